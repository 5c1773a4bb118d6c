"""`manage.py projections status | run [--once] [NAME …] | replay NAME | verify [NAME …]`."""

import logging
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from observability.health import LAG_CAP
from projections.registry import PROJECTIONS, projection_get
from projections.replay import ReplayRunning, replay
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
            total = replay(projection, progress=progress)
        except ReplayRunning as exc:
            raise CommandError(str(exc)) from exc
        elapsed = max(time.monotonic() - started, 1e-6)
        self.stdout.write(
            f"{projection.name}: rebuilt {done:,} events in {elapsed:.1f}s ({done / elapsed:,.0f} events/s);"
            f" swapped in, its checkpoint has applied {total:,} events"
        )

    def do_verify(self, names: list[str], options: dict[str, Any]) -> None:
        failed = []
        for name in names or PROJECTIONS:
            report = verify(projection_get(name))
            rows = ", ".join(f"{table}: {count} rows" for table, count in report.checked_rows.items())
            upto = f"up to ({report.checkpoint[0]}, {report.checkpoint[1]})"
            if report.differences:
                failed.append(name)
                self.stdout.write(f"{name}: {len(report.differences)} differing rows {upto} ({rows})")
                for diff in report.differences:
                    self.stdout.write(f"  {diff.table} {diff.side}: {diff.row}")
            else:
                self.stdout.write(f"{name}: OK {upto} ({rows})")
        if failed:
            raise CommandError(f"read models differ from the events: {', '.join(failed)}")
