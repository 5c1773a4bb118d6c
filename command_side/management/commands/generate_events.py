"""`manage.py generate_events --project ID --events N`: load N synthetic events of a mobile app
(command_side/synthetic.py) into the event store, for demos and benchmarks. They go in through
the event store's own append (COPY, exactly once, the dedup ledger, partitions made as needed),
5,000 a transaction, so the projections follow them as they would real traffic.
"""

import time
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from command_side import event_store
from command_side.synthetic import synthetic_events
from contracts.captured import BufferEntry, EventCaptured
from tenancy.models import Project

CHUNK = 5_000


class Command(BaseCommand):
    help = "Load N synthetic mobile-app events (Zipf event mix, daily users, sessions, logins) into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="the project's id")
        parser.add_argument("--events", type=int, required=True, help="how many events")
        parser.add_argument("--days", type=int, default=30, help="spread over this many days up to now (30)")
        parser.add_argument("--users", type=int, help="distinct users (default: one per 100 events)")
        parser.add_argument("--event-types", type=int, default=50, help="event types, Zipf-distributed (50)")
        parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same events (0)")

    def handle(self, *args: Any, **options: Any) -> None:
        project_id: int = options["project"]
        total: int = options["events"]
        days: int = options["days"]
        users: int = options["users"] or max(1, total // 100)
        types: int = options["event_types"]
        if not Project.objects.filter(pk=project_id).exists():
            raise CommandError(f"no project {project_id}")
        if total < 1 or days < 1 or users < 1 or not 1 <= types <= 10_000:
            raise CommandError("--events, --days and --users must be at least 1, --event-types 1 to 10,000")
        self.stdout.write(f"generating {total:,} events for project {project_id}: {users:,} users, {days} days")
        started = time.monotonic()
        stored = duplicates = 0
        chunk: list[EventCaptured] = []
        events = synthetic_events(
            total=total, days=days, users=users, types=types, seed=options["seed"], end=datetime.now(UTC)
        )
        for event in events:
            chunk.append(event)
            if len(chunk) == CHUNK:
                stored, duplicates = self._append(project_id, chunk, stored, duplicates, total, started)
                chunk = []
        if chunk:
            stored, duplicates = self._append(project_id, chunk, stored, duplicates, total, started)
        elapsed = max(time.monotonic() - started, 1e-6)
        self.stdout.write(
            f"stored {stored:,} events in {elapsed:.1f} s ({stored / elapsed:,.0f} events/s)"
            + (f"; {duplicates:,} were already stored (the same seed twice)" if duplicates else "")
        )

    def _append(
        self, project_id: int, chunk: list[EventCaptured], stored: int, duplicates: int, total: int, started: float
    ) -> tuple[int, int]:
        result = event_store.append([BufferEntry(project_id=project_id, events=chunk)])
        stored += result.stored
        duplicates += result.duplicates
        done = stored + duplicates
        if done % (CHUNK * 20) < CHUNK or done == total:
            elapsed = max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"  {done:,} of {total:,} ({done / elapsed:,.0f} events/s)")
        return stored, duplicates
