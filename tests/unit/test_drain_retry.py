"""A deadlock or serialization victim is appended again at once; any other error propagates."""

import psycopg
import pytest

from command_side.drain import append_retrying
from command_side.event_store import AppendResult


def failing(times: int, error: type[Exception]):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def append(batch):  # type: ignore[no-untyped-def]
        calls.append(len(batch))
        if len(calls) <= times:
            raise error("rolled back")
        return AppendResult(stored=len(batch), duplicates=0, rejected=0)

    return append, calls


@pytest.mark.parametrize("error", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure])
def test_a_rolled_back_victim_is_appended_again_at_once(error):
    append, calls = failing(2, error)
    assert append_retrying([("entry", "decoded")], append) == AppendResult(1, 0, 0)  # type: ignore[list-item]
    assert calls == [1, 1, 1]


def test_a_victim_three_times_over_is_left_to_the_reclaim():
    append, calls = failing(3, psycopg.errors.DeadlockDetected)
    with pytest.raises(psycopg.errors.DeadlockDetected):
        append_retrying([("entry", "decoded")], append)  # type: ignore[list-item]
    assert len(calls) == 3


def test_other_errors_are_not_retried():
    append, calls = failing(1, psycopg.errors.QueryCanceled)
    with pytest.raises(psycopg.errors.QueryCanceled):
        append_retrying([("entry", "decoded")], append)  # type: ignore[list-item]
    assert len(calls) == 1
