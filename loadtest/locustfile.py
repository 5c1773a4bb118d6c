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

Counted as failures: any status but 201 for session/start/ and 200 for the rest, a batch with
rejected events, and 503 (buffer full or unavailable; its Retry-After is in the message). Like a
mobile SDK, a user keeps what was not accepted and sends it again, same uuids, once Retry-After
has passed, so a run through an overload also exercises deduplication.
Imports only the standard library and locust.
"""

import gzip
import json
import logging
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment

API_KEY = os.environ.get("TIDELOG_API_KEY", "")
PERSONAL_API_KEY = os.environ.get("TIDELOG_PERSONAL_API_KEY", "")
QUERY_HOST = os.environ.get("TIDELOG_QUERY_HOST", "http://127.0.0.1:8001").rstrip("/")
API = "/api/v1/analytics"

# An SDK's queue is bounded while the server is away (PostHog's mobile SDKs: maxQueueSize 1,000,
# oldest dropped), which is also the most one batch may carry (contracts.limits.MAX_BATCH_EVENTS).
MAX_QUEUED_EVENTS = 1_000
# PostHog's Android and iOS SDKs gzip their batches; others send plain JSON.
GZIP_SHARE = 0.3
# Phones whose clock is minutes off: the server corrects their times with sent_at.
SKEWED_CLOCK_SHARE = 0.1
# Seconds to back off after a 503 without a usable Retry-After, or when nothing answered.
DEFAULT_RETRY_AFTER = 5.0

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

log = logging.getLogger("tidelog.loadtest")


@events.init.add_listener
def warn_about_missing_keys(environment: Environment, **kwargs: Any) -> None:
    if not API_KEY:
        log.warning("TIDELOG_API_KEY is not set: ingestion will answer 401 (manage.py create_project loadtest --json)")
    if not PERSONAL_API_KEY:
        log.warning("TIDELOG_PERSONAL_API_KEY is not set: the query API will answer 401 to analysts")


class MobileAppUser(FastHttpUser):
    """One install of a mobile app: starts a session, flushes a batch every few seconds of use,
    sends a purchase at once, may log in (PostHog's `$identify`: the anonymous id becomes the
    user's, with person properties by `$set`), and flushes and ends its session when it stops.
    A fifth of installs never call session/start/: their sessions are inferred by inactivity."""

    weight = 20
    wait_time = between(1, 5)
    connection_timeout = 5.0
    network_timeout = 30.0

    def on_start(self) -> None:
        # Anonymous until it logs in, as a mobile SDK starts: a random id kept on the device.
        self.distinct_id = f"anon-{uuid.uuid4().hex[:16]}"
        self.logged_in = False
        os_name, os_versions = random.choice(PLATFORMS)
        self.device = {
            "device_id": f"device-{uuid.uuid4().hex[:16]}",
            "app_version": random.choice(APP_VERSIONS),
            "os_name": os_name,
            "os_version": random.choice(os_versions),
        }
        skewed = random.random() < SKEWED_CLOCK_SHARE
        self.clock_skew = timedelta(seconds=random.uniform(-600, 600) if skewed else 0)
        self.headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        self.queue: list[dict[str, Any]] = []
        self.retry_at = 0.0
        self.screen = "Home"
        self.last_flush = self.clock()
        self.session_id = self.start_session() if random.random() < 0.8 else None
        self.queue.append(self.event("app_opened", self.clock()))
        self.flags: dict[str, Any] = {}
        self.load_flags()

    def on_stop(self) -> None:
        if self.queue and not self.backing_off():
            self.send_batch()
        if self.session_id is None:
            return
        body = {"distinct_id": self.distinct_id, "timestamp": self.now(), "sent_at": self.now(), **self.device}
        with self.client.put(
            f"{API}/session/{self.session_id}/end/",
            data=json.dumps(body),
            headers=self.headers,
            name="session/{session_id}/end/",
            catch_response=True,
        ) as response:
            self.check(response, 200)

    @task(6)
    def flush_batch(self) -> None:
        self.collect(random.randint(20, 50))
        if not self.backing_off():
            self.send_batch()

    @task(1)
    def log_in(self) -> None:
        """Once per install: the SDK's identify(), queued like any event."""
        if self.logged_in:
            return
        anonymous, self.distinct_id = self.distinct_id, f"user-{uuid.uuid4().hex[:16]}"
        event = self.event("$identify", self.clock())
        event["properties"] = {"$anon_distinct_id": anonymous,
                               "$set": {"plan": random.choice(("free", "pro")), "country": random.choice(("DE", "US"))},
                               "$set_once": {"first_app_version": self.device["app_version"]}}  # fmt: skip
        self.queue.append(event)
        self.logged_in = True

    @task(1)
    def capture_purchase(self) -> None:
        """A purchase goes out at once, outside the batch; when refused it waits in the queue."""
        event = self.event("purchase_completed", self.clock())
        if self.backing_off():
            self.queue.append(event)
            return
        with self.client.post(
            f"{API}/capture/",
            data=json.dumps({**event, "sent_at": self.now()}),
            headers=self.headers,
            name="capture/",
            catch_response=True,
        ) as response:
            if not self.check(response, 200):
                self.queue.append(event)

    @task(1)
    def load_flags(self) -> None:
        """The SDK's flag refresh (at start, then now and then), with the person properties it
        knows; the first time a flag's value is used it reports `$feature_flag_called`."""
        if self.backing_off():
            return
        body = {"distinct_id": self.distinct_id,
                "person_properties": {"app_version": self.device["app_version"], "os_name": self.device["os_name"]}}  # fmt: skip
        with self.client.post(
            f"{API}/public/feature-flags/for_user/",
            data=json.dumps(body),
            headers=self.headers,
            name="public/feature-flags/for_user/",
            catch_response=True,
        ) as response:
            if not self.check(response, 200):
                return
            try:
                flags = response.json()["flags"]
            except (ValueError, KeyError, TypeError):
                response.failure(f"200 without flags: {(response.text or '')[:200]}")
                return
        for key, answer in flags.items():
            if key not in self.flags:
                value = answer["variant"] if answer["variant"] is not None else answer["enabled"]
                exposure = self.event("$feature_flag_called", self.clock())
                exposure["properties"].update({"$feature_flag": key, "$feature_flag_response": value})
                self.queue.append(exposure)
        self.flags = flags

    # --- the SDK -------------------------------------------------------------------------------

    def clock(self) -> datetime:
        """The phone's clock, which may be off by minutes."""
        return datetime.now(UTC) + self.clock_skew

    def now(self) -> str:
        return self.clock().isoformat()

    def backing_off(self) -> bool:
        return time.monotonic() < self.retry_at

    def start_session(self) -> str | None:
        body: dict[str, Any] = {"distinct_id": self.distinct_id, "timestamp": self.now(), "sent_at": self.now()}
        body.update(self.device)
        if random.random() < 0.5:
            body["session_id"] = str(uuid.uuid4())  # SDKs that make their own; the rest get one back
        with self.client.post(
            f"{API}/session/start/",
            data=json.dumps(body),
            headers=self.headers,
            name="session/start/",
            catch_response=True,
        ) as response:
            if not self.check(response, 201):
                return None
            try:
                return str(response.json()["session_id"])
            except (ValueError, KeyError, TypeError):
                response.failure(f"201 without a session_id: {(response.text or '')[:200]}")
                return None

    def collect(self, count: int) -> None:
        """The events of the time since the last flush, spread over it in order of time."""
        now = self.clock()
        span = max((now - self.last_flush).total_seconds(), 1.0)
        start = now - timedelta(seconds=span)
        offsets = sorted(random.uniform(0, span) for _ in range(count))
        kinds = random.choices(list(EVENT_MIX), weights=list(EVENT_MIX.values()), k=count)
        for kind, offset in zip(kinds, offsets, strict=True):
            self.queue.append(self.event(kind, start + timedelta(seconds=offset)))
        self.last_flush = now
        del self.queue[:-MAX_QUEUED_EVENTS]

    def event(self, event_type: str, moment: datetime) -> dict[str, Any]:
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
        event: dict[str, Any] = {
            "event_type": event_type,
            "distinct_id": self.distinct_id,
            "timestamp": moment.isoformat(),
            "uuid": str(uuid.uuid4()),
            "properties": properties,
            **self.device,
        }
        if self.session_id is not None:
            event["session_id"] = self.session_id
        return event

    def send_batch(self) -> None:
        batch = self.queue[:MAX_QUEUED_EVENTS]
        body = json.dumps({"events": batch, "sent_at": self.now()}).encode()
        headers, name = self.headers, "batch/"
        if random.random() < GZIP_SHARE:
            body = gzip.compress(body, compresslevel=6)
            headers, name = {**self.headers, "Content-Encoding": "gzip"}, "batch/ (gzip)"
        with self.client.post(f"{API}/batch/", data=body, headers=headers, name=name, catch_response=True) as response:
            if not self.check(response, 200):
                return  # kept, sent again with the same uuids: the server stores each once
            del self.queue[: len(batch)]
            try:
                rejected = response.json().get("rejected") or []
            except (ValueError, AttributeError):
                response.failure(f"200 without a JSON body: {(response.text or '')[:200]}")
                return
            if rejected:
                response.failure(f"{len(rejected)} of {len(batch)} events rejected, first: {rejected[0]}")

    def check(self, response: ResponseContextManager, expected: int) -> bool:
        """Record the outcome; on 503 or no answer, back off as an SDK does."""
        if response.status_code == expected:
            response.success()
            return True
        if response.status_code == 0:
            # Nothing answered (refused, reset, timed out): locust records the connection error.
            self.retry_at = time.monotonic() + DEFAULT_RETRY_AFTER
            return False
        if response.status_code == 503:
            retry_after = response.headers.get("Retry-After") if response.headers else None
            try:
                wait = float(retry_after) if retry_after else DEFAULT_RETRY_AFTER
            except ValueError:
                wait = DEFAULT_RETRY_AFTER
            self.retry_at = time.monotonic() + wait
            try:
                code = response.json().get("code")
            except (ValueError, AttributeError):
                code = None
            response.failure(f"503 {code or 'unavailable'}, Retry-After: {retry_after}")
            return False
        response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
        return False


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
