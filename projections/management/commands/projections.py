"""`manage.py projections status | run [--once] [NAME …] | replay NAME [--retained-only] | verify [NAME …]`."""

import logging
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from observability.health import LAG_CAP
from projections.registry import PROJECTIONS, projection_get
from projections.replay import ReplayRunning, replay
from projections.retention import HistoryWouldBeLost, lifetime_tables, retained_from, windows
from projections.runner import run_forever, run_until_caught_up
from projections.status import open_appenders, projection_status_list
from projections.verify import verify

log = logging.getLogger("tidelog.projections")


class Command(BaseCommand):
    help = "Projections: show status, run them, replay one from zero, or verify read models."

    def add_arguments(self, parser: CommandParser) -> None:
        known = ", ".join(PROJECTIONS)
        # Subcommands, not one positional: argparse cannot parse `run --once NAME` when the
        # names are a nargs="*" positional of the top-level parser.
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("status", help="checkpoint, events applied and lag of each projection")
        run = actions.add_parser("run", help="apply new events, forever (SIGTERM stops after the batch)")
        run.add_argument("names", nargs="*", metavar="NAME", help=f"default all: {known}")
        run.add_argument("--once", action="store_true", help="catch up to now, then exit")
        rebuild = actions.add_parser("replay", help="rebuild one projection from zero and swap it in")
        rebuild.add_argument("names", nargs=1, metavar="NAME", help=known)
        rebuild.add_argument(
            "--retained-only",
            action="store_true",
            help="past retention, rebuild sessions, people or property counts from the retained events alone"
            " (their history before the watermark is lost)",
        )
        check = actions.add_parser("verify", help="recompute read models from raw events and compare")
        check.add_argument("names", nargs="*", metavar="NAME", help=f"default all: {known}")

    def handle(self, *args: Any, **options: Any) -> None:
        names: list[str] = options.get("names") or []
        try:
            for name in names:
                projection_get(name)
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from exc
        getattr(self, f"do_{options['action']}")(names, options)

    def do_status(self, names: list[str], options: dict[str, Any]) -> None:
        now = timezone.now()
        self.stdout.write(
            f"{'projection':<24} {'xact_id':>12} {'position':>12} {'applied':>12} {'lag (events)':>13}  last batch"
        )
        for status in projection_status_list():
            ago = f"{(now - status.updated_at).total_seconds():.1f}s ago" if status.updated_at else "never"
            lag = f">{LAG_CAP:,}" if status.lag_events > LAG_CAP else f"{status.lag_events:,}"
            self.stdout.write(
                f"{status.name:<24} {status.xact_id:>12} {status.position:>12} {status.events_applied:>12}"
                f" {lag:>13}  {ago}"
            )
        self.stdout.write(
            "lag: committed events after the checkpoint, counted exactly up to "
            f"{LAG_CAP:,}; 'last batch' is the time since the checkpoint last moved."
        )
        appenders = open_appenders()
        self.stdout.write(f"open appenders (runners wait for these): {len(appenders) or 'none'}")
        for appender in appenders:
            self.stdout.write(f"  {appender.describe()}")

    def do_run(self, names: list[str], options: dict[str, Any]) -> None:
        if options["once"]:
            for name, applied in run_until_caught_up(names or None).items():
                self.stdout.write(f"{name}: applied {applied} events")
            return
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            if not stopping:
                log.info("signal %d: stopping after the current batch", signum)
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("running projections: %s", ", ".join(names or PROJECTIONS))
        stopped = run_forever(names or None, should_stop=lambda: stopping)
        if stopped:
            raise CommandError(f"projections stopped by errors (see the log): {', '.join(stopped)}")
        log.info("projections stopped")

    def do_replay(self, names: list[str], options: dict[str, Any]) -> None:
        projection = projection_get(names[0])
        started = last_report = time.monotonic()
        done = 0

        def progress(applied: int) -> None:
            nonlocal done, last_report
            done += applied
            now = time.monotonic()
            if now - last_report >= 1.0:  # a line a second, not one a batch
                last_report = now
                self.stdout.write(
                    f"{projection.name}: rebuilt {done:,} events ({done / (now - started):,.0f} events/s)"
                )

        try:
            total = replay(projection, progress=progress, retained_only=options.get("retained_only", False))
        except (ReplayRunning, HistoryWouldBeLost) as exc:
            raise CommandError(str(exc)) from exc
        elapsed = max(time.monotonic() - started, 1e-6)
        self.stdout.write(
            f"{projection.name}: rebuilt {done:,} events in {elapsed:.1f}s ({done / elapsed:,.0f} events/s);"
            f" swapped in, its checkpoint has applied {total:,} events"
        )
        with connection.cursor() as cursor:
            watermark = retained_from(cursor)
        if watermark is not None:
            since = f"{projection.name}: rebuilt from the events retained since {watermark:%Y-%m-%d %H:%M} UTC"
            if windows(projection):
                since += f"; the history before it kept as it was in {', '.join(windows(projection))}"
            if lifetime_tables(projection):
                since += f"; {', '.join(lifetime_tables(projection))} now hold the retained events' alone"
            self.stdout.write(since)

    def do_verify(self, names: list[str], options: dict[str, Any]) -> None:
        failed = []
        for name in names or PROJECTIONS:
            report = verify(projection_get(name))
            history = {table: f", {count} of history" for table, count in report.history_rows.items()}
            rows = ", ".join(
                f"{table}: {count} rows{history.get(table, '')}" for table, count in report.checked_rows.items()
            )
            upto = f"up to ({report.checkpoint[0]}, {report.checkpoint[1]})"
            if report.retained_from is not None:
                upto += f", the window retained since {report.retained_from:%Y-%m-%d %H:%M} UTC"
                if report.unverified:
                    upto += f" ({', '.join(report.unverified)} not checked: they sum up history that was dropped)"
            if report.differences:
                failed.append(name)
                self.stdout.write(f"{name}: {len(report.differences)} differing rows {upto} ({rows})")
                for diff in report.differences:
                    self.stdout.write(f"  {diff.table} {diff.side}: {diff.row}")
            elif not report.checked_rows:
                self.stdout.write(f"{name}: not checked {upto}")
            else:
                self.stdout.write(f"{name}: OK {upto} ({rows})")
        if failed:
            raise CommandError(f"read models differ from the events: {', '.join(failed)}")
