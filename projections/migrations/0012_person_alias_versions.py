"""Person alias versions (schema.PERSON_ALIAS_VERSIONS, kept by the people projection beside
PERSON_ALIASES): per project, the transaction that last changed its aliases, so a query process
can keep a project's aliases decoded while they are unchanged (query_side/user_sets.py) instead
of reading them on every request. Filled here for every project that has aliases: the version is
this migration's transaction."""

from django.db import migrations

CREATE = """
CREATE TABLE rm_person_alias_versions (
    project_id bigint NOT NULL PRIMARY KEY,
    version    xid8   NOT NULL
);
INSERT INTO rm_person_alias_versions (project_id, version)
SELECT DISTINCT project_id, pg_current_xact_id() FROM rm_person_aliases;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0011_event_timelines")]
    operations = [migrations.RunSQL(CREATE, "DROP TABLE rm_person_alias_versions;")]
