"""Event property keys and values for the pickers (projections/event_properties.py);
contracts/schema.py declares every column and says what it holds. The primary keys serve every
read: an event type's keys, a key's values (at most the projection's cap of them)."""

from django.db import migrations

CREATE = """
CREATE TABLE rm_event_property_keys (
    project_id       bigint  NOT NULL,
    event_type       text    NOT NULL,
    key              text    NOT NULL,
    event_count      bigint  NOT NULL,
    high_cardinality boolean NOT NULL,
    PRIMARY KEY (project_id, event_type, key)
);

CREATE TABLE rm_event_property_values (
    project_id  bigint NOT NULL,
    event_type  text   NOT NULL,
    key         text   NOT NULL,
    value       jsonb  NOT NULL,
    event_count bigint NOT NULL,
    PRIMARY KEY (project_id, event_type, key, value)
);
"""

DROP = """
DROP TABLE rm_event_property_values;
DROP TABLE rm_event_property_keys;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0006_user_sets")]
    operations = [migrations.RunSQL(CREATE, DROP)]
