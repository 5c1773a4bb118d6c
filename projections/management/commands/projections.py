"""`manage.py projections status | run [--once] [NAME …] | replay NAME | verify [NAME …]`."""

import logging
import signal
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from projections.registry import PROJECTIONS, projection_get
from projections.replay import replay, verify
from projections.runner import run_forever, run_until_caught_up
from projections.status import LAG_CAP, projection_status_list

log = logging.getLogger("tidelog.projections")


class Command(BaseCommand):
    help = "Projections: show status, run them, replay one from zero, or verify read models."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "run", "replay", "verify"])
        parser.add_argument("names", nargs="*", help=f"projections (default all): {', '.join(PROJECTIONS)}")
        parser.add_argument("--once", action="store_true", help="run: catch up to now, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        names: list[str] = options["names"]
        try:
            for name in names:
                projection_get(name)
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from exc
        getattr(self, f"do_{options['action']}")(names, options)

    def do_status(self, names: list[str], options: dict[str, Any]) -> None:
        now = timezone.now()
        self.stdout.write(f"{'projection':<18} {'position':>12} {'applied':>12} {'lag':>12}  updated")
        for status in projection_status_list():
            if names and status.name not in names:
                continue
            ago = f"{(now - status.updated_at).total_seconds():.1f}s ago" if status.updated_at else "never"
            lag = f">{LAG_CAP:,}" if status.lag_events > LAG_CAP else f"{status.lag_events:,}"
            self.stdout.write(f"{status.name:<18} {status.position:>12} {status.events_applied:>12} {lag:>12}  {ago}")

    def do_run(self, names: list[str], options: dict[str, Any]) -> None:
        if options["once"]:
            for name, applied in run_until_caught_up(names or None).items():
                self.stdout.write(f"{name}: applied {applied} events")
            return
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("running projections: %s", ", ".join(names or PROJECTIONS))
        run_forever(names or None, should_stop=lambda: stopping)
        log.info("projections stopped")

    def do_replay(self, names: list[str], options: dict[str, Any]) -> None:
        if len(names) != 1:
            raise CommandError("replay takes exactly one projection name")
        projection = projection_get(names[0])
        started = time.monotonic()
        done = 0

        def progress(applied: int) -> None:
            nonlocal done
            done += applied
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{projection.name}: rebuilt {done} events ({rate:,.0f} events/s)")

        total = replay(projection, progress=progress)
        self.stdout.write(
            f"{projection.name}: replayed and swapped in; holds {total} events ({time.monotonic() - started:.1f}s)"
        )

    def do_verify(self, names: list[str], options: dict[str, Any]) -> None:
        failed = False
        for name in names or PROJECTIONS:
            report = verify(projection_get(name))
            rows = ", ".join(f"{table}: {count} rows" for table, count in report.checked_rows.items())
            if report.differences:
                failed = True
                self.stdout.write(f"{name}: {len(report.differences)} differences ({rows})")
                for diff in report.differences:
                    self.stdout.write(f"  {diff.table} {diff.side}: {diff.row}")
            else:
                self.stdout.write(f"{name}: OK ({rows})")
        if failed:
            sys.exit(1)
