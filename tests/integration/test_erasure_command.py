"""`manage.py erase_person`: shows what will go, asks unless --yes (and refuses to erase
unasked when nobody is at a terminal), erases, prints progress, and logs who did it without any
distinct_id, in the table and on the `tidelog.erasure` logger."""

import io
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from command_side.models import ErasureLog
from projections.registry import PROJECTIONS, projection_get
from projections.verify import verify
from tests.erasure_helpers import same_person
from tests.projection_helpers import insert_events
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


class Terminal(io.StringIO):
    """stdin as a person at a terminal typing `answer`."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def alice(project):
    insert_events([{"project_id": project.project_id, "distinct_id": d, "timestamp": T0 + timedelta(minutes=i)}
                   for i in range(4) for d in ("alice", "alice-phone", "bob")])  # fmt: skip
    run_projections()
    return project


def stored(distinct_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tidelog_events WHERE distinct_id = %s", [distinct_id])
        return int(cursor.fetchone()[0])


def test_with_yes_it_erases_prints_progress_and_logs_no_distinct_id(alice, caplog):
    out = io.StringIO()
    with caplog.at_level(logging.INFO, logger="tidelog.erasure"):
        call_command("erase_person", "--project", str(alice.project_id), "--distinct-id", "alice",
                     "--distinct-id", "alice-phone", "--yes", stdout=out)  # fmt: skip
    printed = out.getvalue()
    assert "2 distinct_id(s)" in printed and "8 events, 0 bad events" in printed
    # Both ids were active on one day: its one row of active users loses them.
    assert "user_activity: 1 read-model rows deleted or lowered" in printed
    assert "Erased (log entry" in printed
    assert "alice" not in printed  # --yes: a script's output is kept; the ids are never printed
    assert stored("alice") == stored("alice-phone") == 0 and stored("bob") == 4
    entry = ErasureLog.objects.get()
    assert (entry.via, entry.distinct_id_count, entry.event_count) == ("command", 2, 8)
    assert entry.erased_by.startswith("cli:") and entry.project_id == alice.project_id
    assert "alice" not in " ".join(str(getattr(entry, f.attname)) for f in ErasureLog._meta.fields)
    lines = [r.getMessage() for r in caplog.records if r.name == "tidelog.erasure"]
    assert len(lines) == 1 and "8 events" in lines[0] and "alice" not in lines[0]
    for name in PROJECTIONS:
        assert verify(projection_get(name)).differences == [], name


def test_without_yes_and_no_terminal_it_refuses_and_erases_nothing(alice, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("erase\n"))
    out = io.StringIO()
    with pytest.raises(CommandError, match="not a terminal; pass --yes"):
        call_command("erase_person", "--project", str(alice.project_id), "--distinct-id", "alice", stdout=out)
    assert "4 events" in out.getvalue() and "alice" not in out.getvalue()
    assert stored("alice") == 4
    assert not ErasureLog.objects.exists()


def test_at_a_terminal_it_shows_the_ids_and_erases_only_when_confirmed(alice, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal("no\n"))
    out = io.StringIO()
    with pytest.raises(CommandError, match="not confirmed"):
        call_command("erase_person", "--project", str(alice.project_id), "--distinct-id", "alice", stdout=out)
    assert "alice" in out.getvalue() and stored("alice") == 4
    monkeypatch.setattr("sys.stdin", Terminal("erase\n"))
    call_command("erase_person", "--project", str(alice.project_id), "--distinct-id", "alice", stdout=io.StringIO())
    assert stored("alice") == 0 and ErasureLog.objects.count() == 1


def test_a_person_is_named_by_uuid_and_their_ids_come_from_the_people_read_model(alice):
    person = same_person(alice.project_id, "alice", "alice-phone", at=T0)
    call_command("erase_person", "--project", str(alice.project_id), "--person", str(person), "--yes",
                 stdout=io.StringIO())  # fmt: skip
    assert stored("alice") == stored("alice-phone") == 0 and stored("bob") == 4
    entry = ErasureLog.objects.get()
    assert (entry.person_id, entry.person_count, entry.distinct_id_count) == (person, 1, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [([], "name the person"), (["--distinct-id", ""], "is empty"), (["--person", str(uuid.UUID(int=1))], "no person")],
)
def test_it_refuses_what_names_nobody(alice, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("erase_person", "--project", str(alice.project_id), *argv, "--yes", stdout=io.StringIO())
    assert not ErasureLog.objects.exists()


def test_an_unknown_project_is_refused(db):
    with pytest.raises(CommandError, match="no project 999"):
        call_command("erase_person", "--project", "999", "--distinct-id", "x", "--yes", stdout=io.StringIO())


def test_the_admin_lists_the_erasure_log_read_only(alice, client):
    from django.contrib.auth import get_user_model

    call_command("erase_person", "--project", str(alice.project_id), "--distinct-id", "alice", "--yes",
                 stdout=io.StringIO())  # fmt: skip
    entry = ErasureLog.objects.get()
    client.force_login(get_user_model().objects.create_user("root", password="x", is_staff=True, is_superuser=True))
    listing = client.get("/admin/command_side/erasurelog/")
    assert listing.status_code == 200 and entry.erased_by in listing.content.decode()
    assert "alice" not in listing.content.decode()
    assert client.get("/admin/command_side/erasurelog/add/").status_code == 403
    client.post(f"/admin/command_side/erasurelog/{entry.pk}/delete/", {"post": "yes"})
    assert ErasureLog.objects.filter(pk=entry.pk).exists()
