"""Which errors are outages (503, retry) and which are bugs (500): from types and protocol fields."""

import psycopg
import pytest
import redis
from django.db import InterfaceError, OperationalError
from redis._parsers.base import BaseParser

from command_side.buffer import BufferFull, BufferRefusing, write_refusal
from tenancy.database import is_unavailable


def reply(text: str) -> redis.exceptions.ResponseError:
    """The exception redis-py raises for this error reply (its own parser)."""
    error = BaseParser.parse_error(text)
    assert isinstance(error, redis.exceptions.ResponseError)
    return error


@pytest.mark.parametrize(
    "text",
    [
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
        "READONLY You can't write against a read only replica. script: eed69d, on @user_script:1.",
        "NOREPLICAS Not enough good replicas to write. script: eed69d, on @user_script:1.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    ],
)
def test_every_write_refusal_is_a_retryable_refusal(text):
    assert write_refusal(reply(text)) is BufferRefusing


def test_out_of_memory_is_a_full_buffer():
    assert write_refusal(reply("OOM command not allowed when used memory > 'maxmemory'.")) is BufferFull


@pytest.mark.parametrize(
    "text", ["ERR wrong number of arguments for 'xadd' command", "WRONGTYPE Operation against a key"]
)
def test_other_error_replies_are_bugs(text):
    assert write_refusal(reply(text)) is None


def test_a_refused_connection_is_the_database_unavailable():
    cause = psycopg.OperationalError("connection failed: Connection refused")
    wrapped = OperationalError(str(cause))
    wrapped.__cause__ = cause
    assert is_unavailable(wrapped)
    assert is_unavailable(InterfaceError("connection already closed"))


@pytest.mark.parametrize(
    "error", [psycopg.errors.AdminShutdown, psycopg.errors.CannotConnectNow, psycopg.errors.ConnectionFailure]
)
def test_a_server_shutting_down_or_starting_is_unavailable(error):
    assert is_unavailable(error("terminating connection due to administrator command"))


@pytest.mark.parametrize(
    "error", [psycopg.errors.QueryCanceled, psycopg.errors.UndefinedTable, psycopg.errors.DeadlockDetected]
)
def test_other_database_errors_are_not_outages(error):
    assert not is_unavailable(error("x"))
