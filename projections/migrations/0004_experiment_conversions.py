"""Experiment conversions (projections/experiment_conversions.py) and the projection's record of
which goal each experiment's conversions were backfilled for."""

from django.db import migrations

CREATE = """
CREATE TABLE rm_experiment_conversions (
    project_id    bigint      NOT NULL,
    experiment_id bigint      NOT NULL,
    distinct_id   text        NOT NULL,
    "timestamp"   timestamptz NOT NULL,
    PRIMARY KEY (project_id, experiment_id, distinct_id, "timestamp")
);

CREATE TABLE rm_experiment_backfills (
    experiment_id bigint      PRIMARY KEY,
    project_id    bigint      NOT NULL,
    fingerprint   text        NOT NULL,
    backfilled_at timestamptz NOT NULL DEFAULT now()
);
"""

DROP = """
DROP TABLE rm_experiment_backfills;
DROP TABLE rm_experiment_conversions;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0003_flag_exposures"), ("command_side", "0003_flags_and_experiments")]
    operations = [migrations.RunSQL(CREATE, DROP)]
