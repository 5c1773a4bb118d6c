"""The user directory (projections/user_numbers.py): each id gets one number, known ids keep
theirs, and two runners numbering the same new ids at once agree on them."""

import threading

import psycopg
import pytest

from contracts import schema
from projections.user_numbers import numbers_of
from tests.projection_helpers import conninfo

pytestmark = pytest.mark.django_db(transaction=True)


def test_known_ids_keep_their_numbers_and_new_ones_get_the_next():
    with psycopg.connect(conninfo()) as conn, conn.cursor() as cursor:
        first = numbers_of(cursor, [(1, "a"), (1, "b"), (2, "a")])
        conn.commit()
        again = numbers_of(cursor, [(1, "b"), (1, "c"), (2, "a"), (1, "a"), (1, "b")])
        conn.commit()
        assert {key: again[key] for key in first} == first
        assert len(set(again.values())) == 4
        assert again[(1, "c")] == max(first.values()) + 1  # dense: no number drawn for a known id
        assert numbers_of(cursor, []) == {}


def test_a_runner_waiting_on_anothers_new_ids_gets_their_numbers_once_they_commit():
    ids_a = [(1, f"u{i}") for i in range(0, 6)]
    ids_b = [(1, f"u{i}") for i in range(3, 9)]  # u3..u5 in both
    found: dict[str, dict] = {}
    with psycopg.connect(conninfo()) as first, first.cursor() as cursor_a:
        found["a"] = numbers_of(cursor_a, ids_a)  # inserted, not committed

        def second() -> None:
            with psycopg.connect(conninfo()) as conn, conn.cursor() as cursor:
                found["b"] = numbers_of(cursor, ids_b)  # waits on u3..u5's index entries
                conn.commit()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # blocked behind the first transaction
        first.commit()
        thread.join(timeout=10)
    assert not thread.is_alive()
    a, b = found["a"], found["b"]
    assert set(b) == set(ids_b)
    assert {key: b[key] for key in ids_b if key in a} == {key: a[key] for key in ids_b if key in a}
    with psycopg.connect(conninfo()) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT distinct_id, number FROM {schema.USER_NUMBERS} WHERE project_id = 1")
        stored = dict(cursor.fetchall())
    assert stored == {d: n for (_, d), n in {**a, **b}.items()}
