"""Locust scenarios: mobile apps sending events, and analysts reading dashboards.

    python manage.py create_project loadtest --json      # gives api_key and personal_api_key
    TIDELOG_API_KEY=tlp_… TIDELOG_PERSONAL_API_KEY=tls_… \\
      .venv/bin/locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8000

MobileAppUser models an SDK: a session start, batched flushes (sometimes gzipped, sometimes a
single capture), a session end. AnalystUser reads the query API (TIDELOG_QUERY_HOST, default
http://127.0.0.1:8001). Imports only the standard library and locust (and no Tidelog package but
`contracts`, which it does not need).
"""

import gzip
import json
import os
import random
import uuid
from datetime import UTC, datetime

from locust import FastHttpUser, between, task

API_KEY = os.environ.get("TIDELOG_API_KEY", "")
PERSONAL_API_KEY = os.environ.get("TIDELOG_PERSONAL_API_KEY", "")
QUERY_HOST = os.environ.get("TIDELOG_QUERY_HOST", "http://127.0.0.1:8001")
SCREENS = ["Home", "Search", "Product", "Cart", "Checkout", "Settings"]
BUTTONS = ["add_to_cart", "buy_now", "share", "favourite", "filter"]


def now() -> str:
    return datetime.now(UTC).isoformat()


class MobileAppUser(FastHttpUser):
    weight = 20
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.distinct_id = f"user-{uuid.uuid4().hex[:12]}"
        self.device = {
            "device_id": f"device-{uuid.uuid4().hex[:12]}",
            "app_version": random.choice(["3.4.0", "3.4.1", "3.5.0"]),
            "os_name": random.choice(["iOS", "Android"]),
            "os_version": random.choice(["17.5", "18.1", "14", "15"]),
        }
        self.headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        with self.client.post(
            "/api/v1/analytics/session/start/",
            data=json.dumps({"distinct_id": self.distinct_id, "sent_at": now(), **self.device}),
            headers=self.headers, name="session/start/", catch_response=True,
        ) as response:  # fmt: skip
            self.session_id = response.json().get("session_id") if response.status_code == 201 else None
            self._check(response, 201)

    def on_stop(self) -> None:
        if self.session_id:
            with self.client.put(
                f"/api/v1/analytics/session/{self.session_id}/end/",
                data=json.dumps({"distinct_id": self.distinct_id, "sent_at": now()}),
                headers=self.headers, name="session/{id}/end/", catch_response=True,
            ) as response:  # fmt: skip
                self._check(response, 200)

    def event(self) -> dict:
        kind = random.choices(["screen_viewed", "button_tapped", "purchase_completed"], [6, 3, 1])[0]
        properties: dict = {"$screen_name": random.choice(SCREENS)}
        if kind == "button_tapped":
            properties["button"] = random.choice(BUTTONS)
        if kind == "purchase_completed":
            properties.update(revenue=round(random.uniform(1, 200), 2), currency="EUR")
        return {
            "event_type": kind, "distinct_id": self.distinct_id, "uuid": str(uuid.uuid4()),
            "timestamp": now(), "session_id": self.session_id, "properties": properties, **self.device,
        }  # fmt: skip

    @task(6)
    def flush_batch(self) -> None:
        body = json.dumps({"events": [self.event() for _ in range(random.randint(20, 50))], "sent_at": now()}).encode()
        headers = dict(self.headers)
        if random.random() < 0.3:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        with self.client.post(
            "/api/v1/analytics/batch/", data=body, headers=headers, name="batch/", catch_response=True
        ) as response:
            self._check(response, 200)

    @task(2)
    def capture_one(self) -> None:
        body = json.dumps({**self.event(), "sent_at": now()})
        with self.client.post(
            "/api/v1/analytics/capture/", data=body, headers=self.headers, name="capture/", catch_response=True
        ) as response:
            self._check(response, 200)

    def _check(self, response, expected: int) -> None:  # type: ignore[no-untyped-def]
        if response.status_code == expected:
            response.success()
        elif response.status_code == 503:
            response.failure(f"503 buffer full/unavailable, Retry-After {response.headers.get('Retry-After')}")
        else:
            response.failure(f"{response.status_code}: {response.text[:200]}")


class AnalystUser(FastHttpUser):
    """Reads the query API. Its URLs are absolute because --host names the command API."""

    weight = 1
    wait_time = between(2, 5)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {PERSONAL_API_KEY}"}

    @task(3)
    def event_counts(self) -> None:
        self.client.get(
            QUERY_HOST + "/api/v1/analytics/admin/events/event_counts/", headers=self.headers, name="q: event_counts"
        )

    @task(2)
    def hourly_aggregates(self) -> None:
        self.client.get(
            "/api/v1/analytics/admin/event-aggregates/?interval=hour", headers=self.headers, name="q: event-aggregates"
        )

    @task(1)
    def recent_events(self) -> None:
        self.client.get(QUERY_HOST + "/api/v1/analytics/admin/events/?limit=50", headers=self.headers, name="q: events")
