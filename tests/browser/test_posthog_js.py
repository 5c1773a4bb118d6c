"""PostHog's browser SDK (posthog-js from npm, pinned in tests/sdk/node/package-lock.json: its
self-contained `dist/array.full.js`, no bundler) in Debian's Chromium, on a page of another origin
than the command API (so every request is a real cross-origin one, whose answer the page reads only
where CORS allows it), against a live Tidelog: its remote config, /flags/ and gzipped /e/ batches;
the events and the merge it sends land in the read models, and its flag answers equal Tidelog's
for_user."""

import gzip
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Request, Response, ViewportSize

from tests import node_sdks
from tests.browser.conftest import VIEWPORT, screenshot
from tests.e2e.posthog_sdks import Stack, host_of, query_get, tidelog_for_user, tidelog_with_flags
from tests.process_helpers import Processes, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>posthog-js against Tidelog</title>
<link rel="icon" href="data:,"><script src="/posthog.js"></script>
<style>body { font: 15px system-ui; margin: 2rem; } pre { background: #f4f4f4; padding: 1rem; }</style>
</head><body><h1>posthog-js against Tidelog</h1><pre id="answers">(running)</pre></body></html>
"""

# In the page: init, the first flags, two events, identify, the identified user's flags. Waits on
# the fact each step needs: flags loaded for the anonymous id before identify (so no answer for it
# can arrive after), then the reload identify starts (a callback registered while flags are loaded
# is called at once: that call is skipped).
FLOW = """async ({apiKey, apiHost, userId}) => {
    await new Promise((loaded) => posthog.init(apiKey, {
        api_host: apiHost, loaded, persistence: 'localStorage',
        // Chromium under Playwright says navigator.webdriver: posthog-js would drop every event as
        // a bot's. Its own advice for end-to-end tests (they are then marked $browser_type "bot").
        opt_out_useragent_filter: true,
        autocapture: false, capture_pageview: false, capture_pageleave: false, disable_session_recording: true,
    }))
    await new Promise((loaded) => posthog.onFeatureFlags(loaded))
    const anonymous = posthog.get_distinct_id()
    posthog.capture('$pageview')
    posthog.capture('signup_clicked', {plan: 'pro'})
    let identified = false
    const reloaded = new Promise((loaded) => posthog.onFeatureFlags(() => identified && loaded()))
    identified = true
    posthog.identify(userId, {plan: 'pro'}, {source: 'ad'})
    await reloaded
    const answers = {
        anonymous, distinctId: posthog.get_distinct_id(), sessionId: posthog.get_session_id(),
        beta: posthog.getFeatureFlag('beta') ?? null, betaPayload: posthog.getFeatureFlagPayload('beta') ?? null,
        checkout: posthog.getFeatureFlag('checkout') ?? null,
        checkoutPayload: posthog.getFeatureFlagPayload('checkout') ?? null, off: posthog.getFeatureFlag('off') ?? null,
    }
    document.getElementById('answers').textContent = JSON.stringify(answers, null, 2)
    return answers
}"""


@pytest.fixture(scope="module")
def posthog_js() -> bytes:
    return (node_sdks.install() / "posthog-js" / "dist" / "array.full.js").read_bytes()


@pytest.fixture
def page_origin(posthog_js: bytes) -> Iterator[str]:
    """A tiny HTTP server of the page and the SDK, on localhost: another origin than the command
    API's 127.0.0.1 (both loopback, so Chromium's private-network checks stay out of the way)."""
    files = {"/": (PAGE.encode(), "text/html"), "/posthog.js": (posthog_js, "text/javascript")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = files.get(self.path, (b"not found", "text/plain"))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tidelog(tmp_path: Path, redis_client: Any, project: Any) -> Iterator[Stack]:
    with tidelog_with_flags(tmp_path, project) as stack:
        yield stack


def a_user_in_beta_and_checkout(command: str, project: Any) -> str:
    """A distinct_id Tidelog puts in beta (50%) and, on the pro plan, in a variant of checkout
    (80% of them): an SDK answering off, or without the person's properties, would fail."""
    for n in range(100):
        flags = tidelog_for_user(command, project, f"js-user-{n}", {"plan": "pro"})
        if flags["beta"]["enabled"] and flags["checkout"]["variant"]:
            return f"js-user-{n}"
    raise AssertionError("no user in beta and checkout among 100")


class Sent(NamedTuple):
    method: str
    path: str
    origin: str | None
    is_gzip: bool
    body: Any
    """The JSON body, unzipped, or None."""


def sent(request: Request) -> Sent:
    """A request the page sent. posthog-js gzips bodies, as text/plain (no preflight), when the
    remote config says Tidelog takes gzip: Tidelog knows them by their magic bytes."""
    body = request.post_data_buffer
    is_gzip = body is not None and body[:2] == b"\x1f\x8b"
    if body is not None and is_gzip:
        body = gzip.decompress(body)
    path = urllib.parse.urlsplit(request.url).path
    return Sent(request.method, path, request.all_headers().get("origin"), is_gzip, json.loads(body) if body else None)


def test_posthog_js_in_chromium_sends_events_merges_people_and_reads_flags_cross_origin(
    tidelog: tuple[Processes, str, str], project: Any, browser: Browser, page_origin: str
) -> None:
    _, command, query = tidelog
    api_host = host_of(command)
    user_id = a_user_in_beta_and_checkout(command, project)
    context = browser.new_context(viewport=ViewportSize(width=VIEWPORT["width"], height=VIEWPORT["height"]))
    page = context.new_page()
    page.set_default_timeout(20_000)
    requests: list[Request] = []
    failed: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.startswith(api_host):
            requests.append(request)

    def on_response(response: Response) -> None:
        if response.url.startswith(api_host) and response.status >= 400:
            failed.append(f"{response.url}: {response.status}")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            failed.append(f"console: {message.text}")

    page.on("request", on_request)
    page.on("requestfailed", lambda r: failed.append(f"{r.method} {r.url}: {r.failure}"))
    page.on("response", on_response)
    page.on("console", on_console)

    def counts() -> dict[str, int]:
        body = query_get(query, project, "admin/events/event_counts/")
        return {row["event_type"]: row["count"] for row in body["results"]}

    wanted = {"$pageview": 1, "signup_clicked": 1, "$identify": 1}
    try:
        page.goto(page_origin + "/")
        answers = page.evaluate(FLOW, {"apiKey": project.api_key, "apiHost": api_host, "userId": user_id})
        screenshot(page, "posthog-js")
        # posthog-js sends its batches on its own clock, while the page lives: wait for them.
        wait_for(
            lambda: {key: counts().get(key) for key in wanted} == wanted,
            lambda: (
                f"the query API to count {wanted}, not {counts()} (sent: {[r.url for r in requests]}, failed: {failed})"
            ),
        )
        to_tidelog = [sent(r) for r in requests]
        problems = list(failed)  # not what closing the page cuts short
    finally:
        context.close()
    assert problems == []
    paths = {request.path for request in to_tidelog}
    assert f"/array/{project.api_key}/config.js" in paths, paths
    assert "/flags/" in paths, paths
    batches = [request for request in to_tidelog if request.path == "/e/"]
    assert batches, paths
    assert all(batch.is_gzip and batch.body["batch"] for batch in batches)
    # Cross-origin: every request says whose page sent it, and every answer was readable (CORS;
    # a refused one is a failed request above).
    assert {request.origin for request in to_tidelog} == {page_origin}

    # The flags the identified user got: Tidelog's for_user, with the person properties it sent.
    assert answers["distinctId"] == user_id
    assert answers["anonymous"] != user_id
    last = [request.body for request in to_tidelog if request.path == "/flags/"][-1]
    assert last["distinct_id"] == user_id
    # posthog-js sends identify's $set and $set_once as the person's properties (with its own
    # $initial_… ones); checkout's first condition matches on them, it would not without.
    assert (last["person_properties"]["plan"], last["person_properties"]["source"]) == ("pro", "ad")
    expected = tidelog_for_user(command, project, user_id, last["person_properties"])
    assert tidelog_for_user(command, project, user_id, {})["checkout"]["enabled"] is False
    assert answers["beta"] is True
    assert answers["betaPayload"] == expected["beta"]["payload"] == {"color": "blue"}
    assert answers["checkout"] == expected["checkout"]["variant"]
    assert answers["checkout"] in ("control", "test")
    assert answers["checkoutPayload"] == expected["checkout"]["payload"]
    assert answers["off"] is False

    events = query_get(query, project, f"admin/events/?distinct_id={answers['anonymous']}")["results"]
    pageview = next(e for e in events if e["event_type"] == "$pageview")
    assert pageview["session_id"] == answers["sessionId"] == pageview["properties"]["$session_id"]
    assert pageview["properties"]["$current_url"] == page_origin + "/"
    assert pageview["properties"]["$lib"] == "web"
    assert next(e for e in events if e["event_type"] == "signup_clicked")["properties"]["plan"] == "pro"

    def person() -> dict[str, Any] | None:
        found = query_get(query, project, f"admin/people/?distinct_id={user_id}")["results"]
        return found[0] if found and len(found[0]["distinct_ids"]) == 2 else None

    merged = wait_for(person, f"the identify to merge {answers['anonymous']} into {user_id}")
    assert merged is not None
    assert sorted(merged["distinct_ids"]) == sorted([answers["anonymous"], user_id])
    assert (merged["properties"]["plan"], merged["properties"]["source"]) == ("pro", "ad")
    assert merged["is_identified"] is True
