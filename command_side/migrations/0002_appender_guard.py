"""Refuse any insert into the events table by a transaction that has not announced itself as an
appender (contracts/follow.py). Projection runners trust that every transaction writing events
holds the appender lock; without this guard a new writer that forgot it would let runners read
past its rows, and those events would be missing from every read model, silently and for good.
"""

from django.db import migrations

from contracts.follow import APPENDER_LOCK_CLASS, APPENDER_LOCK_KEY

GUARD = f"""
CREATE FUNCTION tidelog_events_require_appender() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted
          AND classid = {APPENDER_LOCK_CLASS} AND objid = {APPENDER_LOCK_KEY} AND objsubid = 2
    ) THEN
        RAISE EXCEPTION 'tidelog_events: the transaction writing events did not announce itself'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run contracts.follow.ANNOUNCE_APPENDER first in the transaction, before it writes anything.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tidelog_events_require_appender BEFORE INSERT ON tidelog_events
    FOR EACH STATEMENT EXECUTE FUNCTION tidelog_events_require_appender();
"""

DROP = """
DROP TRIGGER IF EXISTS tidelog_events_require_appender ON tidelog_events;
DROP FUNCTION IF EXISTS tidelog_events_require_appender();
"""


class Migration(migrations.Migration):
    dependencies = [("command_side", "0001_event_store")]
    operations = [migrations.RunSQL(GUARD, DROP)]
