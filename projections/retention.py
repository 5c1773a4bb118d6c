"""Read models past retention. Retention (command_side/storage.py) drops raw events before a
watermark (schema.EVENT_RETENTION); the read models keep what those events gave them.

A projection says, for each of its tables, which rows derive only from events at or after the
watermark: `retained_windows`, a predicate per table over the row's own columns, written with
`{t}.` before each column and `%(retained_from)s` for the watermark (a bucket that starts at or
after it; a user's first exposure at or after it). Such rows are in the RETAINED WINDOW: verify
recomputes and checks them, replay rebuilds them. Every other row is HISTORY: verify leaves it,
and replay carries it over from the live table unchanged, along with any row of the same key
(a user first exposed before the watermark keeps the live row, later exposures included).

A table without a predicate is a LIFETIME table: each row sums up every event of a session, a
person or a property (sessions, people, event_properties). Once retention has dropped anything,
verify cannot check it (it says so), and replay refuses to rebuild it unless asked to rebuild
from the retained events alone, which loses the history the dropped events held.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from contracts import schema
from projections.projection import Projection


class HistoryWouldBeLost(Exception):
    """A replay would rebuild a lifetime table from the retained events alone."""


def retained_from(cursor: Any) -> datetime | None:
    """The watermark, read through `cursor` (in its snapshot); None: nothing was ever dropped."""
    cursor.execute(f"SELECT retained_from FROM {schema.EVENT_RETENTION}")
    row = cursor.fetchone()
    return row[0] if row else None


def windows(projection: Projection) -> Mapping[str, str]:
    """Table -> its retained-window predicate (see the module docstring); absent: lifetime."""
    return getattr(projection, "retained_windows", {})


def lifetime_tables(projection: Projection) -> list[str]:
    return [table for table in projection.tables if table not in windows(projection)]


def in_window(projection: Projection, table: str, alias: str) -> str:
    """The table's predicate on the row alias `alias`."""
    return "(" + windows(projection)[table].replace("{t}", alias) + ")"


def same_key(key: Sequence[str], left: str, right: str) -> str:
    if not key:
        raise ValueError("a windowed table needs a primary key: history rows are matched by it")
    return f"({', '.join(f'{left}.{k}' for k in key)}) = ({', '.join(f'{right}.{k}' for k in key)})"


def replay_refusal(projection: Projection, watermark: datetime) -> str:
    tables = ", ".join(lifetime_tables(projection))
    return (
        f"retention has dropped the events before {watermark:%Y-%m-%d %H:%M} UTC, and {projection.name}'s"
        f" {tables} sum up whole histories (sessions, people, property counts): a replay would rebuild"
        " them from the retained events alone and lose what the dropped ones gave. Pass --retained-only"
        " to do that anyway."
    )


def carry_history(cursor: Any, projection: Projection, live: str, shadow: str, watermark: datetime) -> int:
    """In a replay's swap, before `shadow` replaces the live table `live`: the shadow's rows of
    the history (and any of a key the live history holds) give way to the live history rows.
    Returns how many rows were carried over."""
    table = live
    key = _table(table).key
    params = {"retained_from": watermark}
    cursor.execute(
        f"""DELETE FROM {shadow} s WHERE NOT {in_window(projection, table, "s")}
            OR EXISTS (SELECT 1 FROM {live} l WHERE NOT {in_window(projection, table, "l")}
                       AND {same_key(key, "l", "s")})""",
        params,
    )
    cursor.execute(f"INSERT INTO {shadow} SELECT * FROM {live} l WHERE NOT {in_window(projection, table, 'l')}", params)
    return int(cursor.rowcount)


def _table(name: str) -> schema.Table:
    for table in schema.SHARED:
        if table.name == name:
            return table
    raise LookupError(f"no table {name!r} in contracts.schema")
