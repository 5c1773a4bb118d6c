"""Which database errors mean "PostgreSQL cannot be reached right now" (answer 503 and let the
client retry) rather than a bug (500). Shared by both APIs: tenancy is what both sides import.

Decided from the exception's type and its SQLSTATE, a protocol field; never from its message.
"""

import psycopg
from django.db import Error as DjangoDatabaseError
from django.db import InterfaceError

# SQLSTATEs of a server that is going away or not yet back, or that lost the connection:
# class 08 (connection exception), 57P01 admin_shutdown (a fast stop), 57P02 crash_shutdown,
# 57P03 cannot_connect_now (starting up, shutting down, in recovery), 57P05 idle session timeout,
# 25006 read_only_sql_transaction (a write reached a replica promoted away from, mid-failover).
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "57P05", "25006"})


class DatabaseUnavailable(Exception):
    """PostgreSQL could not answer, and nothing cached could answer in its place."""


def is_unavailable(exc: BaseException) -> bool:
    """True for a connection that could not be made or was lost, or a server shutting down."""
    if isinstance(exc, InterfaceError):
        return True  # Django's "connection already closed"
    cause = exc.__cause__ if isinstance(exc, DjangoDatabaseError) else exc
    if isinstance(cause, psycopg.InterfaceError):
        return True
    if not isinstance(cause, psycopg.OperationalError | psycopg.errors.ReadOnlySqlTransaction):
        return False
    state = cause.sqlstate
    # No SQLSTATE: the failure is the client's own (connection refused, server closed the socket).
    return state is None or state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
