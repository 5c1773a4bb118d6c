"""contracts/schema.py is the interface between the sides: every declared table, column, type
and key is what the migrations really made, so a migration that changes one fails here until
the declaration (and, through it, every statement) follows."""

import pytest
from django.db import connection

from contracts import schema

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("table", schema.SHARED, ids=lambda table: table.name)
def test_the_declared_columns_and_types_are_the_databases(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            [table.name],
        )
        assert cursor.fetchall() == [(column.name, column.type) for column in table.columns]


@pytest.mark.parametrize("table", schema.SHARED, ids=lambda table: table.name)
def test_the_declared_key_is_the_primary_key(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i"
            " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n",
            [table.name],
        )
        assert tuple(name for (name,) in cursor.fetchall()) == table.key


def test_an_appender_writes_every_column_but_the_stores_own():
    assert [column.name for column in schema.APPENDED] + list(schema.EVENT_STORE_OWN) == [
        column.name for column in schema.EVENTS.columns
    ]
