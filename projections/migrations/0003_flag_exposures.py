"""Feature-flag exposures (projections/flag_exposures.py), and projection_json_compact: the
compact JSON text of a jsonb value, as flag_exposures.compact_json spells it, for verify."""

from django.db import migrations

CREATE = """
CREATE TABLE rm_flag_exposures (
    project_id     bigint      NOT NULL,
    flag_key       text        NOT NULL,
    distinct_id    text        NOT NULL,
    first_variant  text        NOT NULL,
    first_at       timestamptz NOT NULL,
    variants       text[]      NOT NULL,
    exposure_count bigint      NOT NULL,
    PRIMARY KEY (project_id, flag_key, distinct_id)
);

CREATE TABLE rm_flag_exposure_days (
    project_id     bigint NOT NULL,
    flag_key       text   NOT NULL,
    day            date   NOT NULL,
    variant        text   NOT NULL,
    exposure_count bigint NOT NULL,
    PRIMARY KEY (project_id, flag_key, day, variant)
);

-- Keys in jsonb's own order, strings escaped as jsonb escapes them, numbers as stored.
CREATE FUNCTION projection_json_compact(value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'object' THEN
        RETURN '{' || coalesce((
            SELECT string_agg(to_jsonb(k)::text || ':' || projection_json_compact(v), ',' ORDER BY n)
            FROM jsonb_each(value) WITH ORDINALITY AS e(k, v, n)), '') || '}';
    WHEN 'array' THEN
        RETURN '[' || coalesce((
            SELECT string_agg(projection_json_compact(v), ',' ORDER BY n)
            FROM jsonb_array_elements(value) WITH ORDINALITY AS a(v, n)), '') || ']';
    ELSE
        RETURN value::text;
    END CASE;
END
$$;
"""

DROP = """
DROP FUNCTION projection_json_compact(jsonb);
DROP TABLE rm_flag_exposure_days;
DROP TABLE rm_flag_exposures;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0002_event_users_project_bucket")]
    operations = [migrations.RunSQL(CREATE, DROP)]
