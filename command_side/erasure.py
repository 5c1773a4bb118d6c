"""Erase a person and log it: the one entry point of `manage.py erase_person` and of the staff
API (erasures_api.py). The erasure itself is projections/erasure.py (it owns the runners'
locks); this adds the log row, committed in the same transaction, and the log line after it.
Never writes a distinct_id or any event data, to the table or to the log.
"""

import logging
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from command_side.models import ErasureLog
from projections.erasure import Progress, erase_person

log = logging.getLogger("tidelog.erasure")


def _ignore(message: str) -> None:
    pass


def person_erase(
    *,
    project_id: int,
    person_id: uuid.UUID | None = None,
    distinct_ids: tuple[str, ...] = (),
    erased_by: str,
    via: str,
    progress: Progress = _ignore,
) -> ErasureLog:
    """Erase the person (projections.erasure.erase_person: its refusals propagate, nothing
    erased) and record who did it, in one transaction: no log row without its erasure."""
    with transaction.atomic():
        erased = erase_person(project_id=project_id, person_id=person_id, distinct_ids=distinct_ids, progress=progress)
        entry = ErasureLog.objects.create(
            project_id=project_id,
            erased_at=timezone.now(),
            erased_by=erased_by,
            via=via,
            person_id=erased.person_ids[0] if len(erased.person_ids) == 1 else None,
            person_count=len(erased.person_ids),
            distinct_id_count=len(erased.distinct_ids),
            event_count=erased.events,
            bad_event_count=erased.bad_events,
            read_model_row_count=erased.read_model_rows,
        )
        transaction.on_commit(lambda: _log_line(entry))
    return entry


def _log_line(entry: ErasureLog) -> None:
    log.info(
        "erasure %d: project %d, person %s (%d persons), %d distinct_ids, %d events, %d bad events,"
        " %d read-model rows; by %s via %s",
        entry.pk, entry.project_id, entry.person_id or "-", entry.person_count, entry.distinct_id_count,
        entry.event_count, entry.bad_event_count, entry.read_model_row_count, entry.erased_by, entry.via,
    )  # fmt: skip


def erasure_body(entry: ErasureLog) -> dict[str, Any]:
    return {
        "id": entry.pk, "project_id": entry.project_id, "erased_at": entry.erased_at, "erased_by": entry.erased_by,
        "via": entry.via, "person_id": entry.person_id, "person_count": entry.person_count,
        "distinct_id_count": entry.distinct_id_count,
        "event_count": entry.event_count, "bad_event_count": entry.bad_event_count,
        "read_model_row_count": entry.read_model_row_count,
    }  # fmt: skip
