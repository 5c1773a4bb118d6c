"""`manage.py event_store [info|ensure-partitions|prune-ids]`: the store's engine and its upkeep."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from command_side import event_store
from contracts.schema import EVENT_IDS, EVENTS


class Command(BaseCommand):
    help = "Report the event store's engine and size; create partitions ahead; prune the dedup ledger."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", default="info", choices=["info", "ensure-partitions", "prune-ids"])

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "ensure-partitions":
            event_store.partitions_ensure_ahead()
            self.stdout.write("partitions ensured")
            return
        if action == "prune-ids":
            removed = event_store.event_ids_prune()
            self.stdout.write(f"forgot {removed} ids older than {settings.TIDELOG_DEDUP_WINDOW_DAYS} days")
            return
        engine = event_store.engine()
        with connection.cursor() as cursor:
            if engine == "timescaledb":
                cursor.execute(
                    "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = %s", [EVENTS.name]
                )
                parts = f"{cursor.fetchone()[0]} chunks (hypertable, 1 day each)"
            else:
                cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [EVENTS.name])
                parts = f"{cursor.fetchone()[0]} partitions (one a UTC day, plus default)"
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [EVENT_IDS.name])
            ids = cursor.fetchone()[0]
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'position')", [EVENTS.name])
            cursor.execute(f"SELECT last_value FROM {cursor.fetchone()[0]}")
            position = cursor.fetchone()[0]
        self.stdout.write(f"engine          {engine}")
        self.stdout.write(f"layout          {parts}")
        self.stdout.write(f"last position   {position}")
        self.stdout.write(f"dedup ledger    ~{max(ids, 0)} ids, window {settings.TIDELOG_DEDUP_WINDOW_DAYS} days")
