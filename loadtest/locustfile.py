"""Locust scenarios: mobile apps in sessions, sending events, logging in and fetching their
feature flags (MobileAppUser), and analysts reading dashboards, sessions and people (AnalystUser). Load and status codes only;
loadtest/bench_ingest.py checks what got stored.

    python manage.py create_project loadtest --json     # prints api_key and personal_api_key
    export TIDELOG_API_KEY=tlp_...  TIDELOG_PERSONAL_API_KEY=tls_...
    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8000

--host is the command API (`make run` and docker compose both serve it on :8000). Analysts read
TIDELOG_QUERY_HOST (default http://127.0.0.1:8001). Through nginx's combined port, point both at
http://127.0.0.1:8080. Under compose, make the keys with
`docker compose exec query-api python manage.py create_project loadtest --json`.

A mobile app speaks through the example Python client, sdk_examples/python (its queue in memory,
its requests through locust's client), so the load follows the SDK rules of sdk_examples/README.md:
gzipped batches of up to 100 events, sessions started with the client's own session id, flags
from for_user with one `$feature_flag_called` per user, flag and value. Counted as failures: any
status but 201 for session/start/ and 200 for the rest, a batch with rejected events, and 503
(buffer full or unavailable; its Retry-After is in the message). The client keeps what was not
accepted and sends it again, same uuids, once Retry-After (or its backoff) has passed, so a run
through an overload also exercises deduplication.
Imports only the standard library, locust and sdk_examples/python.
"""

import logging
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk_examples" / "python"))
from tidelog_sdk import Tidelog, TidelogConfig
from tidelog_sdk.transport import Answer

API_KEY = os.environ.get("TIDELOG_API_KEY", "")
PERSONAL_API_KEY = os.environ.get("TIDELOG_PERSONAL_API_KEY", "")
QUERY_HOST = os.environ.get("TIDELOG_QUERY_HOST", "http://127.0.0.1:8001").rstrip("/")
API = "/api/v1/analytics"

# An SDK's queue is bounded while the server is away (PostHog's mobile SDKs: maxQueueSize 1,000,
# oldest dropped).
MAX_QUEUED_EVENTS = 1_000
# Phones whose clock is minutes off: the server corrects their times with sent_at.
SKEWED_CLOCK_SHARE = 0.1

SCREENS = ("Home", "Search", "ProductDetail", "Cart", "Checkout", "Profile", "Settings")
BUTTONS = ("add_to_cart", "buy_now", "share", "favourite", "filter", "sort")
SEARCHES = ("running shoes", "rain jacket", "headphones", "coffee", "backpack")
# What a shopping app sends while in use: mostly screens and taps.
EVENT_MIX = {
    "screen_viewed": 45,
    "button_tapped": 30,
    "search_performed": 8,
    "product_added_to_cart": 7,
    "app_backgrounded": 4,
    "app_foregrounded": 4,
    "purchase_completed": 2,
}
APP_VERSIONS = ("3.4.0", "3.4.1", "3.5.0")
PLATFORMS = (("iOS", ("17.5", "18.1", "18.2")), ("Android", ("13", "14", "15")))
# The client's requests, named in locust's statistics by the end of their path.
REQUEST_NAMES = (
    ("/batch/", "batch/"),
    ("/session/start/", "session/start/"),
    ("/end/", "session/{session_id}/end/"),
    ("/public/feature-flags/for_user/", "public/feature-flags/for_user/"),
)

log = logging.getLogger("tidelog.loadtest")


@events.init.add_listener
def warn_about_missing_keys(environment: Environment, **kwargs: Any) -> None:
    if not API_KEY:
        log.warning("TIDELOG_API_KEY is not set: ingestion will answer 401 (manage.py create_project loadtest --json)")
    if not PERSONAL_API_KEY:
        log.warning("TIDELOG_PERSONAL_API_KEY is not set: the query API will answer 401 to analysts")


class LocustTransport:
    """The client's Transport over locust's client: each request timed, named and judged."""

    def __init__(self, client: FastHttpSession) -> None:
        self.client = client

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        name = next(name for suffix, name in REQUEST_NAMES if url.endswith(suffix))
        expected = 201 if name == "session/start/" else 200
        with self.client.request(method, url, data=body, headers=headers, name=name, catch_response=True) as response:
            status = response.status_code
            retry_after = response.headers.get("Retry-After") if response.headers else None
            content = response.content or b""
            if status == 0:
                pass  # nothing answered (refused, reset, timed out): locust records the connection error
            elif status == expected:
                rejected = rejected_events(content) if name == "batch/" else []
                if rejected:
                    response.failure(f"{len(rejected)} events rejected, first: {rejected[0]}")
                else:
                    response.success()
            elif status == 503:
                code = error_code(content)
                response.failure(f"503 {code or 'unavailable'}, Retry-After: {retry_after}")
            else:
                response.failure(f"{status}: {content[:200]!r}")
        if status == 0:
            raise ConnectionError(f"no answer to {method} {url}")
        return Answer(status, {"retry-after": retry_after} if retry_after else {}, content)


def rejected_events(content: bytes) -> list[Any]:
    try:
        return list(Answer(200, {}, content).json().get("rejected") or [])
    except (ValueError, AttributeError):
        return [f"200 without a JSON body: {content[:200]!r}"]


def error_code(content: bytes) -> str | None:
    try:
        return str(Answer(503, {}, content).json().get("code"))
    except (ValueError, AttributeError):
        return None


class MobileAppUser(FastHttpUser):
    """One install of a mobile app: starts a session, flushes a batch every few seconds of use,
    sends a purchase at once, may log in (identify(): the anonymous id becomes the user's, with
    person properties by `$set`), and flushes and ends its session when it stops. A fifth of
    installs never start a session: their sessions are inferred by inactivity."""

    weight = 20
    wait_time = between(1, 5)
    connection_timeout = 5.0
    network_timeout = 30.0

    def on_start(self) -> None:
        os_name, os_versions = random.choice(PLATFORMS)
        app_version = random.choice(APP_VERSIONS)
        skewed = random.random() < SKEWED_CLOCK_SHARE
        self.clock_skew = random.uniform(-600, 600) if skewed else 0.0
        self.moment: float | None = None  # the time events are stamped with while collect() back-dates them
        config = TidelogConfig(
            host=self.host or "",
            api_key=API_KEY,
            storage_dir=None,  # the queue and state in memory
            max_queue_size=MAX_QUEUED_EVENTS,
            app_version=app_version,
            os_name=os_name,
            os_version=random.choice(os_versions),
            person_properties={"app_version": app_version, "os_name": os_name},
        )
        # Not start()ed: no thread, the tasks below drive it (flush() sends in this greenlet).
        self.tidelog = Tidelog(config, transport=LocustTransport(self.client), clock=self.clock)
        self.logged_in = False
        self.screen = "Home"
        if random.random() < 0.8:
            self.tidelog.on_foreground()  # queues session/start/ with the client's own session id
        self.last_flush = self.clock()
        self.track("app_opened")
        self.load_flags()

    def on_stop(self) -> None:
        self.tidelog.on_background()  # flushes
        self.tidelog.sessions.end(self.clock())  # the app closed for good: its session ends now
        self.tidelog.flush()

    @task(6)
    def flush_batch(self) -> None:
        self.collect(random.randint(20, 50))
        self.tidelog.flush()  # nothing while backing off: kept, sent later with the same uuids

    @task(1)
    def log_in(self) -> None:
        """Once per install: the SDK's identify(), queued like any event; fetches the flags again."""
        if self.logged_in:
            return
        self.tidelog.identify(
            f"user-{uuid.uuid4().hex[:16]}",
            set={"plan": random.choice(("free", "pro")), "country": random.choice(("DE", "US"))},
            set_once={"first_app_version": self.tidelog.config.app_version},
        )
        self.logged_in = True

    @task(1)
    def capture_purchase(self) -> None:
        """A purchase goes out at once; when refused it waits in the queue."""
        self.track("purchase_completed")
        self.tidelog.flush()

    @task(1)
    def load_flags(self) -> None:
        """The SDK's flag refresh (at start, then now and then); the first time a flag's value
        is used it reports `$feature_flag_called`."""
        if self.tidelog.sender.backing_off():
            return
        self.tidelog.fetch_flags()
        for key in self.tidelog.flags.keys():
            self.tidelog.get_variant(key)

    def clock(self) -> float:
        """The phone's clock, which may be off by minutes."""
        return self.moment if self.moment is not None else time.time() + self.clock_skew

    def collect(self, count: int) -> None:
        """The events of the time since the last flush, spread over it in order of time."""
        now = self.clock()
        span = max(now - self.last_flush, 1.0)
        offsets = sorted(random.uniform(0, span) for _ in range(count))
        kinds = random.choices(list(EVENT_MIX), weights=list(EVENT_MIX.values()), k=count)
        try:
            for kind, offset in zip(kinds, offsets, strict=True):
                self.moment = now - span + offset
                self.track(kind)
        finally:
            self.moment = None
        self.last_flush = now

    def track(self, event_type: str) -> None:
        if event_type == "screen_viewed":
            self.screen = random.choice(SCREENS)
        properties: dict[str, Any] = {"$screen_name": self.screen}
        if event_type == "button_tapped":
            properties["button"] = random.choice(BUTTONS)
        elif event_type == "search_performed":
            properties.update(query=random.choice(SEARCHES), results=random.randint(0, 120))
        elif event_type == "product_added_to_cart":
            properties.update(product_id=f"sku-{random.randint(1, 5_000)}", price=round(random.uniform(2, 300), 2))
        elif event_type == "purchase_completed":
            properties.update(revenue=round(random.uniform(5, 400), 2), currency="EUR", items=random.randint(1, 6))
        self.tidelog.track(event_type, properties)


class AnalystUser(FastHttpUser):
    """Someone with a dashboard open, reading the query API with a personal API key. Its URLs are
    absolute because --host names the command API."""

    weight = 1
    wait_time = between(2, 6)
    connection_timeout = 5.0
    network_timeout = 60.0

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {PERSONAL_API_KEY}"}

    @task(3)
    def event_counts(self) -> None:
        self.client.get(
            f"{QUERY_HOST}{API}/admin/events/event_counts/", headers=self.headers, name="query: events/event_counts/"
        )

    @task(2)
    def hourly_aggregates(self) -> None:
        self.client.get(
            f"{QUERY_HOST}{API}/admin/event-aggregates/?interval=hour",
            headers=self.headers,
            name="query: event-aggregates/?interval=hour",
        )

    @task(2)
    def sessions(self) -> None:
        self.client.get(f"{QUERY_HOST}{API}/admin/sessions/?limit=50", headers=self.headers, name="query: sessions/")

    @task(1)
    def session_metrics(self) -> None:
        self.client.get(
            f"{QUERY_HOST}{API}/admin/session-metrics/?interval=day&breakdown=app_version",
            headers=self.headers,
            name="query: session-metrics/?interval=day&breakdown=app_version",
        )

    @task(1)
    def people(self) -> None:
        self.client.get(
            f"{QUERY_HOST}{API}/admin/people/?property=plan:pro", headers=self.headers, name="query: people/?property="
        )

    @task(1)
    def recent_events(self) -> None:
        self.client.get(
            f"{QUERY_HOST}{API}/admin/events/?limit=50", headers=self.headers, name="query: events/?limit=50"
        )
