"""`manage.py generate_events --project ID --events N`: load N synthetic events of a mobile app
(command_side/synthetic.py) into the event store, for demos and benchmarks, by binary COPY
straight into the events table and the dedup ledger (event_store.append_encoded), one
transaction a batch, so the projections follow them as they would real traffic.
"""

import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from command_side import event_store
from command_side.synthetic import COPY_COLUMNS, Batch, synthetic_batches
from contracts.schema import EVENTS
from tenancy.models import Project

BATCH = 50_000
"""Events a transaction: large enough that COPY's per-statement cost vanishes, small enough
that a projection runner following the load is never far behind."""
PROGRESS_EVERY = 1_000_000


class Command(BaseCommand):
    help = "Load N synthetic mobile-app events (Zipf event mix, daily users, sessions, logins) into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="the project's id")
        parser.add_argument("--events", type=int, required=True, help="how many events")
        parser.add_argument("--days", type=int, default=30, help="spread over this many days up to now (30)")
        parser.add_argument("--users", type=int, default=200_000, help="the user base (200,000)")
        parser.add_argument("--event-types", type=int, default=50, help="event types, Zipf-distributed (50)")
        parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same events (0)")
        parser.add_argument("--jobs", type=int, default=2, help="connections writing at once (2)")
        parser.add_argument(
            "--no-analyze", action="store_true", help="skip the ANALYZE of the events table after loading"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project_id: int = options["project"]
        total: int = options["events"]
        days: int = options["days"]
        users: int = options["users"]
        types: int = options["event_types"]
        if not Project.objects.filter(pk=project_id).exists():
            raise CommandError(f"no project {project_id}")
        if total < 1 or days < 1 or users < 1 or options["jobs"] < 1 or not 1 <= types <= 10_000:
            raise CommandError("--events, --days, --users and --jobs must be at least 1, --event-types 1 to 10,000")
        self.stdout.write(
            f"generating {total:,} events for project {project_id}: {users:,} users, {days} days, {types} event types"
        )
        started = time.monotonic()
        batches = synthetic_batches(
            project_id=project_id, total=total, days=days, users=users, types=types, seed=options["seed"],
            end=datetime.now(UTC), batch_size=BATCH,
        )  # fmt: skip
        stored = duplicates = 0
        next_report = PROGRESS_EVERY
        for result in _store_in_parallel(batches, options["jobs"]):
            stored += result.stored
            duplicates += result.duplicates
            if stored + duplicates >= next_report:
                next_report += PROGRESS_EVERY
                elapsed = max(time.monotonic() - started, 1e-6)
                done = stored + duplicates
                self.stdout.write(f"  {done:,} of {total:,} ({done / elapsed:,.0f} events/s)")
        elapsed = max(time.monotonic() - started, 1e-6)
        self.stdout.write(
            f"stored {stored:,} events in {elapsed:.1f} s ({stored / elapsed:,.0f} events/s)"
            + (f"; {duplicates:,} were already stored (the same seed and options twice)" if duplicates else "")
        )
        if options["no_analyze"]:
            return
        analyzed = time.monotonic()
        with connection.cursor() as cursor:
            # The planner's statistics for the new rows now, not when autovacuum gets round to it.
            cursor.execute(f"ANALYZE {EVENTS}")
        self.stdout.write(f"analyzed {EVENTS} in {time.monotonic() - analyzed:.1f} s")


def _store_in_parallel(batches: Iterator[Batch], jobs: int) -> Iterator[event_store.AppendResult]:
    """Append the batches on `jobs` connections at once, yielding each one's result as it comes.

    Generating is cheaper than storing (the indexes cost the server most of the time), so one
    generator feeds several writers, each appending a whole batch in its own transaction: the
    event store takes concurrent appenders (the horizon, contracts/follow.py), and the batches'
    uuids are distinct. A writer's error stops the feeding and is raised here.
    """
    inbox: queue.Queue[Batch | None] = queue.Queue(maxsize=2 * jobs)
    outbox: queue.Queue[event_store.AppendResult | BaseException] = queue.Queue()

    def write() -> None:
        seen_before = False
        try:
            while (batch := inbox.get()) is not None:
                result = event_store.append_encoded(
                    columns=COPY_COLUMNS, rows=batch.rows, ledger=batch.ledger, count=batch.count, days=batch.days,
                    # After a batch found stored uuids (a rerun), the next likely has them too.
                    expect_duplicates=seen_before,
                )  # fmt: skip
                seen_before = result.duplicates > 0
                outbox.put(result)
        except BaseException as exc:
            outbox.put(exc)  # raised by the feeding thread
            while inbox.get() is not None:
                pass  # keep taking (and dropping), so the feeder never blocks on a full inbox
        finally:
            connection.close()  # this thread's own connection

    def finished() -> Iterator[event_store.AppendResult]:
        while not outbox.empty():
            item = outbox.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    writers = [threading.Thread(target=write, name=f"generate_events-{n}", daemon=True) for n in range(jobs)]
    for writer in writers:
        writer.start()
    try:
        for batch in batches:
            while True:
                yield from finished()
                try:
                    inbox.put(batch, timeout=0.5)
                    break
                except queue.Full:
                    pass
    finally:
        for _ in writers:
            inbox.put(None)  # one stop sign each, after the batches queued before it
        for writer in writers:
            writer.join()
    yield from finished()
