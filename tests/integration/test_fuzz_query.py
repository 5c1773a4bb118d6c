"""Fuzzing the query API (issue 6): hostile values in every parameter of every endpoint, the
endpoints taken from the query URLconf and their parameters from docs/api.md, so that a new
endpoint or parameter is fuzzed without anyone listing it here.

Whatever comes in: never a 500, and every 4xx in the documented shape {"code", "field",
"message"}. Seeded (derandomize) and bounded: 200 examples an endpoint, ~8 s here.
"""

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from tests.fuzz_helpers import rolled_back
from tests.integration.test_query_api import SAMPLES, seed, seed_bad, seed_flag_data, seed_sessions_and_people
from tests.projection_helpers import insert_events

pytestmark = pytest.mark.django_db
SHAPE = {"code", "field", "message"}
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def query_endpoints() -> list[str]:
    """Every route of the query URLconf served by query_side (the Django admin aside), spelled
    as docs/api.md spells it: a parameter `<str:key>` as `{key}`."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str):  # type: ignore[no-untyped-def]
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "dashboard":  # HTML pages, tested in test_dashboard_access.py
                    yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif pattern.callback.__module__.startswith("query_side"):
                yield re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + str(pattern.pattern))

    return sorted(walk(get_resolver("core.urls_query").url_patterns, "/"))


def url_of(endpoint: str) -> str:
    """The endpoint with the route tests' sample for each `{parameter}` (the seeded flag's key)."""
    return re.sub(r"\{(\w+)\}", lambda match: SAMPLES[match[1]], endpoint)


def documented_parameters() -> dict[str, set[str]]:
    """The parameters docs/api.md lists for each query endpoint (its table's second column)."""
    parameters = {}
    for path, column in re.findall(r"^\| `GET (/\S+)` \| ([^|]*(?:\\\|[^|]*)*) \|", API_DOC.read_text(), re.M):
        parameters[path] = {name for name in re.findall(r"`([a-z_]+)", column)}
    return parameters


ENDPOINTS = query_endpoints()
PARAMETERS = documented_parameters()
# Read by every endpoint: a staff user's project (DRF's own `format`); and a name none knows.
EVERYWHERE = {"project_id", "format", "offset"}


def test_every_query_endpoint_is_documented_with_its_parameters():
    assert ENDPOINTS, "no query endpoints found in core.urls_query"
    assert set(ENDPOINTS) <= set(PARAMETERS), set(ENDPOINTS) - set(PARAMETERS)


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


SAFE_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
TIMES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01", "9999-12-31",
            "2026-11-25T10:00:00+23:59", "2026-11-25T10:00:00-16:00", "2026-11-25T10:00:00 02:00",
            "2026-11-25T10:00:00+15:59", "2026-02-30", "2026-11-25T24:00:00", "T10:00", "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers().map(str),
    st.sampled_from(["0", "-1", "1e3", "1.5", "²", "\u0661\u0660", "9" * 40, " 5", "5 ", "0x10", "+5"]),
)
OFFSETS = st.one_of(
    # Any offset Python takes (under 24 h), beyond PostgreSQL's (under 16 h) too.
    st.sampled_from([0, 1, -1, 959, -959, 960, -960, 1439, -1439]),
    st.integers(-1439, 1439),
).map(lambda minutes: timezone(timedelta(minutes=minutes)))
OFFSET_TIMES = st.tuples(st.datetimes(), OFFSETS).map(lambda parts: parts[0].replace(tzinfo=parts[1]).isoformat())
# Mostly shaped as ours are (a time, '|', a uuid or an id), so that they reach PostgreSQL.
SHAPED_CURSORS = st.tuples(OFFSET_TIMES, st.uuids().map(str) | st.integers(-(2**70), 2**70).map(str)).map(
    lambda parts: cursor("|".join(parts))
)
CURSORS = st.one_of(
    SHAPED_CURSORS,
    st.tuples(TIMES, st.one_of(st.uuids().map(str), NUMBERS, SAFE_TEXT)).map(lambda parts: cursor("|".join(parts))),
    SAFE_TEXT.map(cursor),
    st.sampled_from(["!!!", "====", "YQ", "%00", "a" * 5000]),
)
CHOICES = st.sampled_from(["hour", "day", "week", "month", "app_version", "os_name", "HOUR", "distinct_id", ""])
VALUES = st.one_of(TIMES, OFFSET_TIMES, NUMBERS, CURSORS, CHOICES, SAFE_TEXT, st.just("\x00"), st.just("x" * 300))
# What each parameter is read as (params.py), in values that pass (or nearly: a cursor with any
# offset, a time at the ends of the range), so that the query's other parameters get as far as
# PostgreSQL, where the last 500s hid.
PLAUSIBLE = {
    "after": OFFSET_TIMES,
    "before": OFFSET_TIMES,
    "cursor": SHAPED_CURSORS,
    "limit": st.integers(1, 1000).map(str),
    "interval": st.sampled_from(["hour", "day", "week", "month"]),
    "breakdown": st.sampled_from(["app_version", "os_name"]),
    "min_duration": st.sampled_from(["0", "60", "2.5", "999999999.999999"]),
    "max_duration": st.sampled_from(["0", "60", "2.5", "999999999.999999"]),
    "ended_by": st.sampled_from(["explicit", "inactivity", "cap"]),
    "active": st.sampled_from(["true", "false"]),
    # key:value, the value any text: JSON or not, escapes jsonb refuses, numbers it cannot hold.
    "property": st.tuples(SAFE_TEXT, st.one_of(SAFE_TEXT, st.sampled_from(['"\\u0000"', "NaN", "1e999", "[]"]))).map(
        lambda parts: ":".join(parts)
    ),
}
ESCAPES = ["%FF", "%C3", "%00", "%ED%A0%80", "%", "%G1", "+"]


@st.composite
def queries(draw: st.DrawFn, endpoint: str) -> str:
    """A query string: a few of the endpoint's parameters (or strangers), some twice, each a
    plausible value or a hostile one, percent-encoded as UTF-8 or raw escapes that are not."""
    names = sorted(PARAMETERS.get(endpoint, set()) | EVERYWHERE)
    pairs = []
    for name in draw(st.lists(st.sampled_from(names), max_size=4)):
        hostile = draw(st.integers(0, 2)) == 0
        if hostile and draw(st.integers(0, 4)) == 0:
            value = "".join(draw(st.lists(st.sampled_from(ESCAPES), max_size=3)))
        else:
            value = quote(draw(VALUES if hostile else PLAUSIBLE.get(name, SAFE_TEXT)), safe="")
        pairs.append(f"{name}={value}")
    return url_of(endpoint) + ("?" + "&".join(pairs) if pairs else "")


def assert_documented_answer(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 400, 401, 403, 404, 405), (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    if response.status_code >= 400:
        assert SHAPE <= set(body), body
        assert isinstance(body["code"], str) and isinstance(body["message"], str)


@pytest.fixture
def seeded(project):
    """Rows in every table the query API reads, at the edges of time too, so that hostile
    parameters reach PostgreSQL with something to compare against."""
    seed(project.project_id)
    seed_bad(project.project_id, 3)
    seed_flag_data(project.project_id)  # the sample flag, its experiment, exposures, conversions
    seed_sessions_and_people(project.project_id)  # the sample session, its event, the sample person
    insert_events(
        [
            {"project_id": project.project_id, "timestamp": moment}
            for moment in (datetime.now(UTC), datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC))
        ]
    )
    return project


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_query_parameters_are_answered_in_the_error_shape(seeded, settings, endpoint):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    staff = Client(raise_request_exception=False)
    staff.force_login(get_user_model().objects.create_user("staff", password="x", is_staff=True, is_superuser=True))
    key = {"HTTP_AUTHORIZATION": f"Bearer {seeded.personal_api_key}"}
    callers = [
        lambda url: client.get(url, **key),
        lambda url: staff.get(url),
        lambda url: client.get(url),
        lambda url: client.get(url, HTTP_AUTHORIZATION=f"Bearer {seeded.api_key}"),
        lambda url: client.post(url, **key),
    ]

    @fuzz_settings(
        derandomize=True,
        deadline=None,
        max_examples=200,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(query=queries(endpoint), caller=st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3, 4]))
    def one(query: str, caller: int) -> None:
        with rolled_back():
            assert_documented_answer(callers[caller](query))

    one()
