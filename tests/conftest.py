"""Shared fixtures. Every test run gets its own PostgreSQL database and its own Redis key prefix,
so runs on one machine (a developer's and CI's, or two developers') never see each other's data.
"""

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis as redis_lib
from django.conf import settings

from contracts import schema

RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
REDIS_PREFIX = f"tidelog-test-{RUN_ID}"
# Set before any test module is imported: the Dramatiq broker takes its namespace at import.
settings.REDIS_PREFIX = REDIS_PREFIX


@pytest.fixture(scope="session")
def django_db_modify_db_settings() -> None:
    settings.DATABASES["default"].setdefault("TEST", {})
    settings.DATABASES["default"]["TEST"]["NAME"] = f"test_tidelog_{RUN_ID}"


@pytest.fixture(scope="session", autouse=True)
def strangers_long_writes(django_db_setup, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Write transactions of strangers held open for the whole run: one in another database of
    the server, one in the test database touching no Tidelog table. Production servers have
    both (another app, an analyst's open psql); the suite must pass beside them, so it always
    runs beside them. (Torn down before the test database is dropped: it depends on its setup.)"""
    from tests.projection_helpers import conninfo

    stranger_db = f"tidelog_stranger_{RUN_ID}"
    with psycopg.connect(conninfo(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{stranger_db}"')
    try:
        with psycopg.connect(conninfo(dbname=stranger_db)) as other_db, psycopg.connect(conninfo()) as same_db:
            for stranger in (other_db, same_db):
                stranger.execute("CREATE TABLE stranger_writes (x int)")
                stranger.execute("INSERT INTO stranger_writes VALUES (1)")  # holds an xid until the run ends
            yield
            other_db.rollback()
            same_db.rollback()
    finally:
        with psycopg.connect(conninfo(dbname="postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{stranger_db}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def flag_store_closed_before_the_database_is_dropped(django_db_setup) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The flag aggregates' store keeps its own connection pool (eventsourcing's): close it
    before the test database is dropped (teardown runs before django_db_setup's)."""
    yield
    from command_side.flags.application import close_all

    close_all()


@pytest.fixture(scope="session", autouse=True)
def redis_prefix() -> Iterator[str]:
    prefix = REDIS_PREFIX
    settings.REDIS_PREFIX = prefix
    yield prefix
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


@pytest.fixture
def redis_client(redis_prefix: str) -> Iterator[redis_lib.Redis]:
    """The real Redis, emptied of this run's keys after each test."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    for key in client.scan_iter(match=f"{redis_prefix}:*", count=1000):
        client.delete(key)


@pytest.fixture
def project(db):  # type: ignore[no-untyped-def]
    from tenancy.services import project_create

    return project_create(name="Test project")


@pytest.fixture
def other_project(db):  # type: ignore[no-untyped-def]
    from tenancy.services import project_create

    return project_create(name="Other project")


RAW_TABLES = tuple(table.name for table in schema.SHARED)


@pytest.fixture(autouse=True)
def empty_raw_tables_after_transactional_tests(request, django_db_blocker):  # type: ignore[no-untyped-def]
    """Transactional tests commit; Django flushes only its models' tables, so empty ours."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if not (marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))):
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(relname), ', ') FROM pg_class WHERE relname = ANY(%s) AND relkind IN ('r', 'p')",
            [list(RAW_TABLES)],
        )
        tables = cursor.fetchone()[0]
        if tables:
            cursor.execute(f"TRUNCATE {tables}")
