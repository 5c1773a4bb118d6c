"""The dashboard in a real browser (Debian's Chromium through Playwright) against a live server:
events appended to the event store and every projection run, then each page's charts and tables
read back, from the DOM or the Chart.js chart's own data, and compared with the same question
asked of the raw events in SQL (or of the read model's selector, for what only it defines).
Screenshots of each page go to test-output/screenshots/."""

import os
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from playwright.sync_api import expect

from projections.runner import run_until_caught_up
from tenancy.models import Project
from tests.browser.conftest import login_cookie, screenshot
from tests.integration.test_query_api import seed_experiment, seed_flag
from tests.projection_helpers import insert_events
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return TODAY - timedelta(days=days_ago) + timedelta(hours=hour, minutes=minute)


def seed(project_id: int) -> None:
    """Five days of a small app: on the day n days ago, users u1…u(6-n) open it and view two
    screens (u1 buys something too); four users are exposed to a flag and one converts; three
    bad events. All of it through the event store, then every projection."""
    events: list[dict[str, Any]] = []
    for days_ago in range(1, 6):
        for n in range(1, 7 - days_ago):
            common = {"project_id": project_id, "distinct_id": f"u{n}", "app_version": f"1.{3 + n % 2}.0",
                      "os_name": "iOS" if n % 2 else "Android"}  # fmt: skip
            events.append({**common, "event_type": "app_opened", "timestamp": at(days_ago, 10, n)})
            events.append({**common, "event_type": "screen_viewed", "timestamp": at(days_ago, 10, 10 + n)})
            events.append({**common, "event_type": "screen_viewed", "timestamp": at(days_ago, 10, 20 + n)})
            if n == 1:
                events.append({**common, "event_type": "purchase_completed", "timestamp": at(days_ago, 10, 30)})
    seed_flag(project_id, "new-checkout")
    seed_experiment(project_id, at(6, 0), key="checkout-test", flag_key="new-checkout")
    for n, variant in ((1, "control"), (2, "test"), (3, "control"), (4, "test")):
        properties = {"$feature_flag": "new-checkout", "$feature_flag_response": variant}
        events.append({"project_id": project_id, "distinct_id": f"u{n}", "event_type": "$feature_flag_called",
                       "timestamp": at(1, 8, n), "properties": properties})  # fmt: skip
    events.append({"project_id": project_id, "distinct_id": "u2", "event_type": "purchase", "timestamp": at(1, 12)})
    insert_events(events)
    with connection.cursor() as cursor:
        for days_ago in (1, 1, 3):
            cursor.execute(
                "INSERT INTO tidelog_bad_events (project_id, received_at, error_code, field, message, payload)"
                " VALUES (%s, %s, 'missing_field', 'distinct_id', 'm', '{}')",
                [project_id, at(days_ago, 9)],
            )
    run_projections()


def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def per_day(sql: str, *params: Any) -> dict[str, int]:
    """{"YYYY-MM-DD": n} from a query of (day, n) rows."""
    return {day.isoformat(): int(n) for day, n in rows(sql, *params)}


def settled(page, section: str, state: str = "ready", *, shot: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Wait until the section has its answer (ready, empty or error), then require `state`
    (after a screenshot named `shot`, if asked, so that an error is pictured too)."""
    locator = page.locator(f"#{section}")
    # Generous: two cores are shared with other work, and the API answers several such reads.
    expect(locator).to_have_attribute("data-state", re.compile("^(ready|empty|error)$"), timeout=30_000)
    if shot:
        screenshot(page, shot)
    found = locator.get_attribute("data-state")
    assert found == state, f"#{section} is {found}: {locator.locator(':scope > .error').text_content()}"


def chart(page, canvas: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What the Chart.js chart on this canvas draws: its labels and each dataset's data."""
    return page.evaluate(
        """id => { const c = Chart.getChart(document.getElementById(id));
                   return {labels: c.data.labels, datasets: Object.fromEntries(c.data.datasets.map(d => [d.label, d.data]))}; }""",
        canvas,
    )


@pytest.fixture
def seeded(project) -> Any:  # type: ignore[no-untyped-def]
    seed(project.project_id)
    return project


@pytest.fixture
def staff() -> str:
    return login_cookie("staff", is_superuser=True)


def test_the_login_page_logs_a_staff_user_in_and_lands_on_the_overview(open_page, project):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("ada", password="a-long-password", is_staff=True, is_superuser=True)
    page = open_page(None)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "a-long-password")
    page.click("form.login button")
    expect(page).to_have_url(re.compile(rf"/overview/\?project_id={project.project_id}$"))
    screenshot(page, "login-landing")
    page.click("text=Log out")
    page.goto("/overview/")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_the_overview_draws_the_raw_events_numbers(open_page, seeded, staff):
    pid = seeded.project_id
    page = open_page(staff)
    page.goto(f"/overview/?project_id={pid}")
    for section in ("tiles", "events", "active", "sessions", "top-events", "bad-events"):
        settled(page, section)
    total = rows("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid)[0][0]
    assert page.inner_text("#tile-events") == f"{total:,}"
    events = chart(page, "chart-events")
    by_day = per_day(
        "SELECT (\"timestamp\" AT TIME ZONE 'UTC')::date, count(*) FROM tidelog_events WHERE project_id = %s GROUP BY 1",
        pid,
    )
    assert events["datasets"]["events"] == [by_day.get(day, 0) for day in events["labels"]]
    assert (
        sum(events["datasets"]["events"]) == total == 3 * (5 + 4 + 3 + 2 + 1) + 5 + 4 + 1 and len(events["labels"]) == 8
    )

    users = per_day(
        "SELECT (\"timestamp\" AT TIME ZONE 'UTC')::date, count(DISTINCT distinct_id) FROM tidelog_events"
        " WHERE project_id = %s GROUP BY 1",
        pid,
    )
    active = chart(page, "chart-active")
    assert active["datasets"]["DAU"] == [users.get(day, 0) for day in active["labels"]]
    assert max(value for value in active["datasets"]["MAU"] if value is not None) >= 5

    sessions = per_day(
        "SELECT (start_at AT TIME ZONE 'UTC')::date, count(*) FROM rm_sessions WHERE project_id = %s GROUP BY 1", pid
    )
    drawn = chart(page, "chart-sessions")
    assert drawn["datasets"]["sessions"] == [sessions.get(day, 0) for day in drawn["labels"]]
    assert page.inner_text("#tile-sessions") == str(sum(sessions.values()))

    top = chart(page, "chart-top-events")
    counted = rows(
        "SELECT event_type, count(*) FROM tidelog_events WHERE project_id = %s GROUP BY 1 ORDER BY 2 DESC, 1", pid
    )
    assert list(zip(top["labels"], top["datasets"]["events"], strict=True)) == [tuple(row) for row in counted]

    bad = chart(page, "chart-bad-events")
    bad_by_day = per_day(
        "SELECT (received_at AT TIME ZONE 'UTC')::date, count(*) FROM tidelog_bad_events WHERE project_id = %s"
        " GROUP BY 1",
        pid,
    )
    assert bad["datasets"]["bad events"] == [bad_by_day.get(day, 0) for day in bad["labels"]]
    assert page.inner_text("#tile-bad-events") == "3"
    assert page.locator("#empty-events").is_hidden()
    screenshot(page, "overview")


def test_the_date_picker_narrows_the_overview_and_stays_in_the_url(open_page, seeded, staff):
    pid = seeded.project_id
    page = open_page(staff)
    page.goto(f"/overview/?project_id={pid}")
    settled(page, "tiles")
    everything = page.inner_text("#tile-events")
    after = (TODAY - timedelta(days=2)).date().isoformat()
    page.fill("#after", after)
    page.click("#apply")
    expect(page).to_have_url(re.compile(rf"after={after}"))
    settled(page, "tiles")
    settled(page, "events")
    narrower = rows(
        'SELECT count(*) FROM tidelog_events WHERE project_id = %s AND "timestamp" >= %s',
        pid,
        TODAY - timedelta(days=2),
    )[0][0]
    assert page.inner_text("#tile-events") == f"{narrower:,}" != everything
    assert chart(page, "chart-events")["labels"][0] == after
    screenshot(page, "overview-narrowed")


def test_the_project_picker_switches_to_the_other_projects_numbers(open_page, seeded, other_project, staff):
    insert_events([{"project_id": other_project.project_id, "event_type": "signup", "timestamp": at(1, 9)}])
    run_projections()
    page = open_page(staff)
    page.goto(f"/overview/?project_id={seeded.project_id}")
    settled(page, "tiles")
    page.select_option("#project-picker", str(other_project.project_id))
    expect(page).to_have_url(re.compile(rf"project_id={other_project.project_id}"))
    settled(page, "tiles")
    settled(page, "top-events")
    assert page.inner_text("#tile-events") == "1"
    assert chart(page, "chart-top-events")["labels"] == ["signup"]


def test_an_empty_project_says_how_to_send_events(open_page, project, staff):
    page = open_page(staff)
    page.goto(f"/overview/?project_id={project.project_id}")
    settled(page, "tiles")
    settled(page, "events", "empty")
    notice = page.locator("#empty-events")
    expect(notice).to_be_visible()
    assert "generate_events" in notice.inner_text() and "curl" in notice.inner_text()
    screenshot(page, "overview-empty")


def test_an_error_of_the_api_is_shown_in_its_section(open_page, project, staff):
    page = open_page(staff)
    page.goto(f"/overview/?project_id={project.project_id}&after=not-a-date")
    settled(page, "events", "error")
    alert = page.locator("#events > .error")
    expect(alert).to_be_visible()
    assert "400" in alert.inner_text() and "after" in alert.inner_text()


def test_a_user_who_is_not_staff_is_refused(open_page, seeded):
    page = open_page(login_cookie("mallory", is_staff=False))
    response = page.goto(f"/overview/?project_id={seeded.project_id}")
    assert response.status == 403
    assert "not a staff user" in page.inner_text("#refused")
    api = page.request.get(f"/api/v1/analytics/admin/events/event_counts/?project_id={seeded.project_id}")
    assert api.status == 403


def test_a_staff_user_of_another_project_is_refused_this_one(open_page, seeded, other_project):
    cookie = login_cookie("eve")
    Project.objects.get(pk=other_project.project_id).members.add(
        __import__("django.contrib.auth", fromlist=["get_user_model"]).get_user_model().objects.get(username="eve")
    )
    page = open_page(cookie)
    response = page.goto(f"/overview/?project_id={seeded.project_id}")
    assert response.status == 403 and "may not read project" in page.inner_text("#refused")
    api = page.request.get(f"/api/v1/analytics/admin/events/event_counts/?project_id={seeded.project_id}")
    assert api.status == 403
    # Their own project opens, and the picker offers nothing else.
    page.goto(f"/overview/?project_id={other_project.project_id}")
    settled(page, "tiles")
    assert page.locator("#project-picker option").all_inner_texts() == [f"Other project ({other_project.project_id})"]


def test_the_sessions_list_links_each_session_to_its_timeline(open_page, seeded, staff):
    pid = seeded.project_id
    page = open_page(staff)
    page.goto(f"/sessions/?project_id={pid}")
    settled(page, "sessions")
    started = rows(
        "SELECT session_id, event_count FROM rm_sessions WHERE project_id = %s AND start_at >= %s"
        " ORDER BY start_at DESC, session_id DESC",
        pid,
        datetime.now(UTC) - timedelta(days=7),
    )
    links = page.locator("#session-list tbody tr td:first-child a")
    assert links.all_inner_texts() == [session_id for session_id, _ in started]
    screenshot(page, "sessions")
    event_count = started[0][1]
    links.first.click()
    expect(page).to_have_url(re.compile(r"/sessions/inferred-"))
    settled(page, "session")
    assert page.locator("#session-events tbody tr").count() == event_count
    assert page.inner_text("dd[data-field=event_count]") == str(event_count)
    screenshot(page, "session")


def test_the_flags_page_draws_a_flags_exposures_per_day_and_variant(open_page, seeded, staff):
    pid = seeded.project_id
    page = open_page(staff)
    page.goto(f"/flags/?project_id={pid}")
    settled(page, "flag-list")
    assert page.locator("#flags tbody tr").all_inner_texts()[0].startswith("new-checkout")
    page.click("#flags a")
    expect(page).to_have_url(re.compile(r"flag=new-checkout"))
    settled(page, "exposures")
    drawn = chart(page, "chart-exposures")
    exposures: dict[str, dict[str, int]] = defaultdict(dict)
    for day, variant, n in rows(
        "SELECT (\"timestamp\" AT TIME ZONE 'UTC')::date, properties->>'$feature_flag_response', count(*)"
        " FROM tidelog_events WHERE project_id = %s AND event_type = '$feature_flag_called' GROUP BY 1, 2",
        pid,
    ):
        exposures[variant][day.isoformat()] = n
    assert set(drawn["datasets"]) == {"control", "test"}
    for variant, data in drawn["datasets"].items():
        assert data == [exposures[variant].get(day, 0) for day in drawn["labels"]]
    assert page.locator("#exposure-users tbody tr").all_inner_texts()[:2] == ["control\t2", "test\t2"]
    screenshot(page, "flags")


def test_the_experiments_page_shows_each_variants_exposed_and_converted_users(open_page, seeded, staff):
    page = open_page(staff)
    page.goto(f"/experiments/?project_id={seeded.project_id}")
    settled(page, "experiment-list")
    page.click("#experiments a")
    settled(page, "results")
    cells = [row.split("\t")[:4] for row in page.locator("#variant-results tbody tr").all_inner_texts()]
    # u1, u3 saw control and bought nothing after; u2 saw test and bought; u4 saw test.
    assert cells == [["control", "2", "0", "0.0%"], ["test", "2", "1", "50.0%"]]
    assert chart(page, "chart-results")["datasets"]["conversion rate (%)"] == [0, 50]
    screenshot(page, "experiments")


# --- Pages whose endpoints land with issue 9's part 2 --------------------------------------


def raw_events(project_id: int) -> list[tuple[str, str, datetime]]:
    return rows(
        'SELECT distinct_id, event_type, "timestamp" FROM tidelog_events WHERE project_id = %s ORDER BY 3', project_id
    )


def test_the_trends_series_picker_lists_the_top_events(open_page, seeded, staff):
    page = open_page(staff)
    page.goto(f"/trends/?project_id={seeded.project_id}")
    expect(page.locator("#series option")).not_to_have_count(0)
    counted = rows(
        "SELECT event_type FROM tidelog_events WHERE project_id = %s GROUP BY 1 ORDER BY count(*) DESC, 1",
        seeded.project_id,
    )
    assert page.locator("#series option").evaluate_all("os => os.map(o => o.value)") == ["$all"] + [
        event_type for (event_type,) in counted
    ]


def test_trends_draws_a_series_per_day_and_math_changes_it(open_page, seeded, staff):
    pid = seeded.project_id
    page = open_page(staff)
    page.goto(f"/trends/?project_id={pid}&series=screen_viewed&interval=day&math=total")
    settled(page, "trends", shot="trends")
    drawn = chart(page, "chart-trends")
    totals: dict[str, int] = defaultdict(int)
    users: dict[str, set[str]] = defaultdict(set)
    for distinct_id, event_type, moment in raw_events(pid):
        if event_type == "screen_viewed":
            totals[moment.date().isoformat()] += 1
            users[moment.date().isoformat()].add(distinct_id)
    [(label, data)] = drawn["datasets"].items()
    assert "screen_viewed" in label
    assert data == [totals.get(day[:10], 0) for day in drawn["labels"]] and sum(data) == 30
    page.select_option("#math", "unique_users")
    page.click("#apply")
    expect(page).to_have_url(re.compile(r"math=unique_users"))
    settled(page, "trends")
    [data] = chart(page, "chart-trends")["datasets"].values()
    assert data == [len(users.get(day[:10], ())) for day in drawn["labels"]] and sum(data) == 15
    # A breakdown by OS: a series per OS, each its users' (odd users are on iOS, even on Android).
    page.select_option("#breakdown", "os_name")
    page.click("#apply")
    settled(page, "trends")
    by_os = chart(page, "chart-trends")["datasets"]
    for os_name, parity in (("iOS", 1), ("Android", 0)):
        expected = [sum(int(user[1:]) % 2 == parity for user in users.get(day[:10], ())) for day in drawn["labels"]]
        assert by_os[f"screen_viewed · unique_users · {os_name}"] == expected


def test_retention_grid_equals_the_cohorts_from_raw_events(open_page, seeded, staff):
    pid = seeded.project_id
    page = open_page(staff)
    page.goto(f"/retention/?project_id={pid}&period=day")
    settled(page, "retention", shot="retention")
    active: dict[str, set[date]] = defaultdict(set)
    for distinct_id, _, moment in raw_events(pid):
        active[distinct_id].add(moment.date())
    cohorts: dict[date, list[str]] = defaultdict(list)
    for distinct_id, days in active.items():
        cohorts[min(days)].append(distinct_id)
    for row in page.locator("#retention-grid tbody tr").all():
        cohort = date.fromisoformat(row.get_attribute("data-cohort"))
        members = cohorts[cohort]
        returned = [
            int(n) for n in row.locator("td[data-returned]").evaluate_all("tds => tds.map(t => t.dataset.returned)")
        ]
        assert row.locator("td").nth(1).inner_text() == str(len(members))
        expected = [sum(cohort + timedelta(days=k) in active[user] for user in members) for k in range(len(returned))]
        assert returned == expected
    assert page.locator("#retention-grid tbody tr").count() == len(cohorts)


def test_the_funnel_counts_users_through_ordered_steps(open_page, seeded, staff):
    pid = seeded.project_id
    steps = ["app_opened", "screen_viewed", "purchase_completed"]
    page = open_page(staff)
    page.goto(f"/funnels/?project_id={pid}&" + "&".join(f"steps={step}" for step in steps))
    settled(page, "funnel", shot="funnels")
    # Per user: the first app_opened, then a later screen_viewed, then a later purchase (14 days).
    reached = [0, 0, 0]
    by_user: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for distinct_id, event_type, moment in raw_events(pid):
        by_user[distinct_id].append((moment, event_type))
    for events in by_user.values():
        step, start = 0, None
        for moment, event_type in events:
            if step < 3 and event_type == steps[step] and (start is None or moment - start <= timedelta(days=14)):
                start = start or moment
                reached[step] += 1
                step += 1
    assert chart(page, "chart-funnel")["datasets"]["users"] == reached == [5, 5, 1]
    # A step picked in the form changes the answer: two steps, no purchase.
    page.select_option("select.step >> nth=2", "")
    page.click("#apply")
    settled(page, "funnel")
    assert chart(page, "chart-funnel")["datasets"]["users"] == [5, 5]


README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "overview.png"


@pytest.mark.skipif(
    not os.environ.get("TIDELOG_README_SCREENSHOT"),
    reason="set TIDELOG_README_SCREENSHOT=1 to retake docs/overview.png",
)
def test_the_readmes_screenshot_of_the_overview_with_demo_data(open_page, project, staff):
    """docs/overview.png, retaken on demand: 30 days of demo data (manage.py generate_events)."""
    call_command("generate_events", project=project.project_id, events=40_000, days=30, seed=1, stdout=StringIO())
    run_until_caught_up()
    page = open_page(staff)
    page.goto(f"/overview/?project_id={project.project_id}&after={(TODAY - timedelta(days=30)).date()}")
    for section in ("tiles", "events", "active", "sessions", "top-events", "bad-events"):
        settled(page, section)
    page.screenshot(path=str(README_SHOT), full_page=True)
    assert README_SHOT.stat().st_size < 300_000
