"""`manage.py erase_person --project ID (--distinct-id X ... | --person UUID)`: erase a person
(GDPR) for good: their events, bad events and read-model rows, with a log row of who and when
(docs/operations.md, "Erasure"). Shows what will go and asks first, unless `--yes`.
"""

import getpass
import sys
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from command_side.erasure import person_erase
from projections.erasure import ErasureRefused, ReadModelDrift, erasure_preview
from tenancy.models import Project


class Command(BaseCommand):
    help = "Erase a person's events and every read-model row derived from them (GDPR), and log who did it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="the project's id")
        parser.add_argument(
            "--distinct-id", action="append", default=[], dest="distinct_ids", metavar="ID",
            help="one of the person's distinct_ids (repeatable); their other ids are found in the people read model",
        )  # fmt: skip
        parser.add_argument("--person", type=uuid.UUID, help="the person's id (people read model)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        project_id: int = options["project"]
        person_id: uuid.UUID | None = options["person"]
        distinct_ids = tuple(options["distinct_ids"])
        if person_id is None and not distinct_ids:
            raise CommandError("name the person: --distinct-id ID (repeatable) or --person UUID")
        if any(not distinct_id.strip() for distinct_id in distinct_ids):
            raise CommandError("a --distinct-id is empty")
        if not Project.objects.filter(pk=project_id).exists():
            raise CommandError(f"no project {project_id}")
        try:
            preview = erasure_preview(project_id=project_id, person_id=person_id, distinct_ids=distinct_ids)
        except ErasureRefused as exc:
            raise CommandError(str(exc)) from exc
        people = ", ".join(str(person) for person in preview.person_ids) or "(none in the people read model)"
        self.stdout.write(f"Project {project_id}, person(s) {people}: {len(preview.distinct_ids)} distinct_id(s)")
        is_asking = not options["yes"] and sys.stdin.isatty()
        if is_asking:
            # Only to the person at the terminal who confirms: a script's or a job's output may
            # be kept, and the ids must not outlive the erasure there.
            self.stdout.write(f"  {', '.join(preview.distinct_ids)}")
        self.stdout.write(f"  {preview.events} events, {preview.bad_events} bad events")
        for table, rows in preview.rows_by_table.items():
            self.stdout.write(f"  {rows} rows of {table}")
        self.stdout.write("  and their share of every counter (lowered, not deleted). This cannot be undone.")
        if not options["yes"]:
            if not is_asking:
                raise CommandError("refusing to erase without confirmation: stdin is not a terminal; pass --yes")
            answer = input("Erase this person for good? Type 'erase' to confirm: ")
            if answer.strip() != "erase":
                raise CommandError("not confirmed: nothing erased")
        try:
            entry = person_erase(
                project_id=project_id,
                person_id=person_id,
                distinct_ids=distinct_ids,
                erased_by=f"cli:{getpass.getuser()}",
                via="command",
                progress=lambda message: self.stdout.write(f"  ... {message}"),
            )
        except (ErasureRefused, ReadModelDrift) as exc:
            raise CommandError(f"nothing erased: {exc}") from exc
        self.stdout.write(
            f"Erased (log entry {entry.pk}): {entry.distinct_id_count} distinct_ids, {entry.event_count} events,"
            f" {entry.bad_event_count} bad events, {entry.read_model_row_count} read-model rows"
        )
