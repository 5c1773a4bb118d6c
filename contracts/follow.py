"""How the event store's appenders and its followers (projection runners) agree on a safe read
horizon. SQL text only; the command side announces, the projections follow. Never widen the
horizon beyond what this module proves safe: a skipped event is a read model wrong forever.
"""

from typing import Final

# The advisory lock every appender takes, shared, as the FIRST statement of its transaction:
# pg_advisory_xact_lock_shared(APPENDER_LOCK_CLASS, APPENDER_LOCK_KEY). Two-int4 keys show in
# pg_locks as (classid, objid, objsubid = 2). Its own class, apart from the runner's checkpoint
# locks (0x7D1E, hashtext(name)) and the partition creator's one-key lock.
APPENDER_LOCK_CLASS: Final = 0x7D1F
APPENDER_LOCK_KEY: Final = 1

ANNOUNCE_APPENDER: Final = f"SELECT pg_advisory_xact_lock_shared({APPENDER_LOCK_CLASS}, {APPENDER_LOCK_KEY})"
"""Run before the transaction writes anything (before it has an xid): see HORIZON."""

# TRICKY: why this horizon is safe, and why it depends on Tidelog's appenders only.
#
# Every event row records its transaction's xid (xact_id, the column default). A follower must
# never read past a row whose transaction may still commit behind it. The server-wide answer,
# pg_snapshot_xmin, waits for EVERY write transaction on the server: any stranger's long write,
# in any database, stalls every read model (issue 5). Instead the horizon H is
#     min(xmax of this statement's snapshot, xids of appenders holding the lock above)
# and the follower then reads, in a LATER statement (so a newer snapshot, READ COMMITTED), only
# rows with xact_id < H. Proof that no appender with xid < H is still running at that read:
#  - the snapshot is taken when this statement starts, before pg_locks is scanned, and its xmax
#    (latest completed xid + 1) is at most the next xid then: an appender that gets its xid
#    after the scan has an xid >= xmax >= H;
#  - an appender that got its xid before the scan took the lock before that (the lock comes
#    before its first write), so if it still runs at the scan it is in the scan, and H <= its
#    xid; if it finished before the scan, its commit is visible to the later read (PostgreSQL
#    makes a commit visible before it releases the transaction's locks).
# pg_locks is read once (MATERIALIZED): two scans of it are two different moments. Only the
# holder's own xid locks count (mode ExclusiveLock): a drainer waiting on another's xid (an
# ON CONFLICT wait) shows a ShareLock row for that other xid. The lowest of a holder's xid locks
# is its top-level xid, the one its rows record (subtransaction xids come later).
# pg_locks shows 32-bit xids: widened to xid8 against the snapshot's xmax, which every running
# xid is within 2^31 of (wraparound protection guarantees it).
HORIZON: Final = f"""
WITH locks AS MATERIALIZED (
    SELECT locktype, database, classid, objid, objsubid, virtualtransaction, transactionid, mode, granted
    FROM pg_locks
), next_xid AS (
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid
), appender_xids AS (
    SELECT x.transactionid::text::bigint AS xid32
    FROM locks a
    JOIN locks x ON x.virtualtransaction = a.virtualtransaction
                AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
    WHERE a.locktype = 'advisory' AND a.granted
      AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.classid = {APPENDER_LOCK_CLASS} AND a.objid = {APPENDER_LOCK_KEY} AND a.objsubid = 2
)
SELECT least(
    n.xid,
    -- mod(), not %: this text may pass through a driver's placeholder parsing.
    min(n.xid - (mod(mod(n.xid - a.xid32, 4294967296) + 4294967296 + 2147483648, 4294967296) - 2147483648))
)::text::xid8
FROM next_xid n LEFT JOIN appender_xids a ON true
GROUP BY n.xid
"""
"""One row, one xid8: read only events with xact_id below it, in a later statement."""

APPENDERS: Final = f"""
WITH locks AS MATERIALIZED (SELECT * FROM pg_locks)
SELECT DISTINCT ON (a.pid) a.pid, x.transactionid::text, now() - act.xact_start AS running_for, act.state,
       left(act.query, 200)
FROM locks a
JOIN locks x ON x.virtualtransaction = a.virtualtransaction
            AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
LEFT JOIN pg_stat_activity act ON act.pid = a.pid
WHERE a.locktype = 'advisory' AND a.granted
  AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND a.classid = {APPENDER_LOCK_CLASS} AND a.objid = {APPENDER_LOCK_KEY} AND a.objsubid = 2
ORDER BY a.pid, x.transactionid::text::bigint
"""
"""The appenders holding the horizon now: (pid, top-level xid, running for, state, query)."""
