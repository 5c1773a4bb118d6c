"""`manage.py event_store [info | ensure-partitions | prune-ids | compress | retention]`: the store's
engine, size and policies, and its upkeep (command_side/storage.py for compression and retention)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from command_side import event_store, storage
from contracts.schema import EVENT_IDS, EVENTS


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def _retention_label(days: int) -> str:
    return f"{days} days (events before {storage.retention_cutoff(days):%Y-%m-%d %H:%M} UTC)"


class Command(BaseCommand):
    help = (
        "Report the event store's engine, size and policies; create partitions ahead; prune the dedup"
        " ledger; compress old chunks (TimescaleDB); drop days past retention."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION")
        actions.add_parser("info", help="engine, layout, sizes, policies, retained window (the default)")
        actions.add_parser("ensure-partitions", help="create the day partitions ahead (plain PostgreSQL)")
        actions.add_parser("prune-ids", help="forget dedup-ledger ids older than TIDELOG_DEDUP_WINDOW_DAYS")
        compress = actions.add_parser(
            "compress",
            help="TimescaleDB: set the compression policy (TIDELOG_EVENT_COMPRESS_AFTER_DAYS) and compress"
            " the chunks it covers now",
        )
        compress.add_argument("--after-days", type=int, help="instead of the setting, for this run (0: no policy)")
        compress.add_argument("--policy-only", action="store_true", help="set the policy, compress nothing now")
        retention = actions.add_parser(
            "retention",
            help="drop the days past TIDELOG_EVENT_RETENTION_DAYS now (whole partitions or chunks), never an"
            " event a projection has not applied",
        )
        retention.add_argument("--days", type=int, help="instead of the setting, for this run")
        retention.add_argument("--dry-run", action="store_true", help="say what would be dropped, drop nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options.get("action") or "info"
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [EVENTS.name])
            if not cursor.fetchone()[0]:
                raise CommandError(f"this database has no event store ({EVENTS.name}): run `manage.py migrate` first")
        if action == "ensure-partitions":
            event_store.partitions_ensure_ahead()
            self.stdout.write("partitions ensured")
        elif action == "prune-ids":
            removed = event_store.event_ids_prune()
            self.stdout.write(f"forgot {removed} ids older than {settings.TIDELOG_DEDUP_WINDOW_DAYS} days")
        elif action == "compress":
            self.compress(options)
        elif action == "retention":
            self.retention(options)
        else:
            self.info()

    def compress(self, options: dict[str, Any]) -> None:
        after = options["after_days"]
        after = settings.TIDELOG_EVENT_COMPRESS_AFTER_DAYS if after is None else after
        if after < 0:
            raise CommandError("--after-days: a number of days, 0 for no policy")
        try:
            changed = storage.compression_policy_apply(after)
        except storage.CompressionUnavailable as exc:
            raise CommandError(str(exc)) from exc
        policy = f"chunks older than {after} days" if after else "off"
        self.stdout.write(f"compression policy: {policy}{'' if changed else ' (unchanged)'}")
        if not after or options["policy_only"]:
            return
        before = storage.storage_by_state()

        def progress(part: storage.Part) -> None:
            self.stdout.write(f"  compressed {part.name} ({part.start:%Y-%m-%d}, {_size(part.total_bytes)})")

        done = storage.compress_now(after, progress=progress)
        after_sizes = storage.storage_by_state()
        was = before["uncompressed"] + before["compressed"]
        now = after_sizes["uncompressed"] + after_sizes["compressed"]
        self.stdout.write(f"compressed {len(done)} chunks now; events table {_size(was)} -> {_size(now)}")

    def retention(self, options: dict[str, Any]) -> None:
        days = options["days"] if options["days"] is not None else settings.TIDELOG_EVENT_RETENTION_DAYS
        if days <= 0:
            if options["days"] is not None:
                raise CommandError("--days: at least 1")
            self.stdout.write("retention is off (TIDELOG_EVENT_RETENTION_DAYS=0): every event is kept")
            return
        verb = "would drop" if options["dry_run"] else "dropped"

        def progress(part: storage.Part) -> None:
            self.stdout.write(f"  {verb} {part.name} ({part.start:%Y-%m-%d}, {_size(part.total_bytes)})")

        self.stdout.write(f"retention: {_retention_label(days)}")
        run = storage.retention_run(days, dry_run=options["dry_run"], progress=progress)
        default = run.default_rows_deleted
        self.stdout.write(
            f"{verb} {len(run.dropped)} days ({_size(sum(p.total_bytes for p in run.dropped))})"
            + (f" and {default:,} older events of the default partition" if default else "")
        )
        if run.held:
            self.stdout.write(f"held: {run.held}")
        self.stdout.write(f"retained window: {self._window(run.retained_from)}")

    @staticmethod
    def _window(retained_from: Any) -> str:
        if retained_from is None:
            return "every event (retention has dropped nothing)"
        return f"events from {retained_from:%Y-%m-%d %H:%M} UTC (earlier ones were dropped; read models keep them)"

    def info(self) -> None:
        engine = event_store.engine()
        parts = storage.parts()
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [EVENT_IDS.name])
            ids = cursor.fetchone()[0]
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'position')", [EVENTS.name])
            cursor.execute(f"SELECT last_value FROM {cursor.fetchone()[0]}")
            position = cursor.fetchone()[0]
        if engine == "timescaledb":
            compressed = sum(1 for part in parts if part.compressed)
            layout = f"{len(parts)} chunks (hypertable, 1 day each; {compressed} compressed)"
            policy = storage.compression_policy()
            compression = f"chunks older than {policy} days (TimescaleDB's job)" if policy else "off"
        else:
            layout = f"{len(parts)} partitions (one a UTC day, plus default)"
            compression = "not available on plain PostgreSQL (large properties are TOAST-compressed)"
        sizes = storage.storage_by_state(parts)
        size = _size(sizes["uncompressed"] + sizes["compressed"])
        if sizes["compressed"]:
            size += f" ({_size(sizes['compressed'])} compressed from {_size(sizes['compressed_before'])})"
        retention_days = settings.TIDELOG_EVENT_RETENTION_DAYS
        self.stdout.write(f"engine          {engine}")
        self.stdout.write(f"layout          {layout}")
        self.stdout.write(f"size            {size}")
        self.stdout.write(f"last position   {position}")
        self.stdout.write(f"dedup ledger    ~{max(ids, 0)} ids, window {settings.TIDELOG_DEDUP_WINDOW_DAYS} days")
        self.stdout.write(f"compression     {compression}")
        retention = _retention_label(retention_days) if retention_days else "off"
        self.stdout.write(f"retention       {retention}")
        self.stdout.write(f"retained window {self._window(storage.retained_from())}")
