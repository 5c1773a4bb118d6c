"""Shared by the fuzz tests: each example runs in a savepoint of the test's transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction


@contextmanager
def rolled_back() -> Iterator[None]:
    """Each example in a savepoint rolled back after it: an error PostgreSQL raised (a 500)
    must not abort the test's transaction for every later example, or hypothesis would
    shrink towards an innocent one."""
    savepoint = transaction.savepoint_create()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)
