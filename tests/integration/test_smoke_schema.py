from django.db import connection


def test_it_creates_the_event_store_tables(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relname IN "
            "('tidelog_events', 'tidelog_event_ids', 'tidelog_bad_events')"
        )
        assert cursor.fetchone()[0] == 3
