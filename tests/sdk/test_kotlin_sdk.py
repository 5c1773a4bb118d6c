"""The Android example's Kotlin core (sdk_examples/android), compiled here with Debian's kotlinc
1.3.31 and run on the JDK: its rules (sdk_examples/README.md) against a server that answers from
a script, then the issue's scenario against a live Tidelog: 1,000 events tracked while the
command API is stopped and started again, the app killed while a batch is in flight and
started again, and exactly 1,000 stored."""

import itertools
import json
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import wait_for
from tests.sdk.kotlin_app import (
    DemoApp,
    build_android_glue,
    build_demo,
    holding_proxy,
    kotlinc_missing,
    scripted_server,
)

pytestmark = pytest.mark.skipif(kotlinc_missing() is not None, reason=kotlinc_missing() or "")

KEY = "tlp_scripted"


@pytest.fixture(scope="module")
def jar() -> Path:
    return build_demo()


def test_the_android_glue_compiles_against_androids_signatures():
    classes = build_android_glue()
    assert (classes / "dev" / "tidelog" / "sdk" / "android" / "TidelogAndroid.class").exists()


def app(jar: Path, storage: Path, host: str, **options: str) -> DemoApp:
    return DemoApp(jar, storage, host, KEY, **{"base_backoff": "0.2", "max_backoff": "2", **options})


def test_it_sends_gzipped_batches_stamped_at_each_send_and_honours_retry_after(jar, tmp_path):
    with scripted_server() as server:
        server.scripts["batch"] = [
            (503, {"Retry-After": "1"}, {"code": "buffer_full"}),
            (200, {}, {"accepted": 5, "rejected": []}),
        ]
        demo = app(jar, tmp_path, server.url, flush_at="5")
        demo.do("track app_opened 5")
        assert demo.value("drain 10") == "true"
        first, second = server.of("batch")
        assert first.headers["Content-Encoding"] == "gzip"
        assert first.headers["Authorization"] == f"Bearer {KEY}"
        assert first.path == "/api/v1/analytics/batch/"
        assert set(first.body) == {"sent_at", "events"}
        assert first.uuids == second.uuids and len(set(first.uuids)) == 5
        # Stamped at each send: the retry says when it left, so the server corrects the clock right.
        assert first.body["sent_at"] != second.body["sent_at"]
        assert second.at - first.at >= 1.0
        assert second.at - first.at < 1.2 + 1.0  # not the 30 s tick: a retry timer of its own
        event = first.body["events"][0]
        assert event["event_type"] == "app_opened" and event["distinct_id"] == demo.distinct_id
        assert event["timestamp"].endswith("Z") and len(event["timestamp"]) == len("2026-11-27T07:02:27.120Z")
        assert {"uuid", "device_id", "app_version", "os_name", "os_version", "properties"} <= set(event)
        demo.exit()


def test_it_keeps_everything_through_5xx_401_and_no_answer_backing_off_more_each_time(jar, tmp_path):
    with scripted_server() as server:
        server.scripts["batch"] = [(500, {}, {}), (401, {}, {"code": "invalid_api_key"}), (502, {}, {}),
                                   (200, {}, {"accepted": 3, "rejected": []})]  # fmt: skip
        demo = app(jar, tmp_path, server.url, flush_at="3", base_backoff="0.3")
        demo.do("track tap 3")
        assert demo.value("drain 20") == "true"
        attempts = server.of("batch")
        assert len(attempts) == 4
        assert all(attempt.uuids == attempts[0].uuids for attempt in attempts)
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
        # min(max, base * 2^(n-1)) * uniform(0.5, 1): 0.15-0.3 s, 0.3-0.6 s, 0.6-1.2 s.
        for n, gap in enumerate(gaps, start=1):
            assert 0.3 * 2 ** (n - 1) * 0.5 <= gap <= 0.3 * 2 ** (n - 1) + 0.8, gaps
        demo.exit()
    # No answer at all: nothing listens there any more. Kept on disk for the next run.
    demo = app(jar, tmp_path, server.url)
    demo.do("track tap 2")
    demo.do("flush")
    time.sleep(0.5)
    assert demo.value("queue") == "2 dropped 0"
    assert any("no answer from" in line for line in demo.said)
    demo.kill()


def test_it_deletes_what_the_server_refused_for_good_and_splits_a_batch_too_large(jar, tmp_path):
    with scripted_server() as server:
        server.scripts["batch"] = [
            (400, {}, {"code": "all_events_invalid", "field": None, "message": "no valid event"}),
            (413, {}, {"code": "body_too_large"}),
            (
                200,
                {},
                {
                    "accepted": 3,
                    "rejected": [{"index": 0, "code": "invalid_value", "field": "properties", "message": "NUL"}],
                },
            ),
        ]
        demo = app(jar, tmp_path, server.url, flush_at="8")
        demo.do("track refused 8")
        assert demo.value("drain 10") == "true"
        demo.do("track big 8")
        assert demo.value("drain 10") == "true"
        sizes = [len(request.uuids) for request in server.of("batch")]
        # 400: the 8 deleted; 413: split in half, each half sent once.
        assert sizes == [8, 8, 4, 4]
        big = server.of("batch")[1].uuids
        assert server.of("batch")[2].uuids + server.of("batch")[3].uuids == big
        assert any("event 0 rejected: invalid_value" in line for line in demo.said)
        assert demo.value("queue") == "0 dropped 0"
        demo.exit()


def test_it_drops_the_oldest_past_the_queue_bound_and_counts_them(jar, tmp_path):
    with scripted_server() as server:
        server.scripts["batch"] = [(500, {}, {})]
        demo = app(jar, tmp_path, server.url, flush_at="5", max_queue="10", max_backoff="0.3")
        demo.do("track offline 15")
        assert demo.value("queue") == "10 dropped 5"
        server.scripts["batch"] = [(200, {}, {"accepted": 5, "rejected": []})]
        assert demo.value("drain 10") == "true"
        # Every event the server took (answered 200), in order, however the app cut them into
        # requests. A send already under way when the queue dropped its oldest files still
        # carries them, and may be answered 200 after the switch: those come first, and are
        # older than every kept event; the kept ones all come, once each, in order.
        delivered = [
            event["properties"]["n"]
            for request in server.of("batch")
            if request.status == 200
            for event in request.body["events"]
        ]
        kept = [n for n in delivered if n >= 5]
        assert kept == list(range(5, 15)), delivered
        assert delivered[: len(delivered) - len(kept)] == sorted(n for n in delivered if n < 5), delivered
        demo.exit()


def test_a_killed_write_is_not_sent_and_a_queue_left_by_a_killed_app_is_sent_in_order(jar, tmp_path):
    with scripted_server() as server:
        server.scripts["batch"] = [(503, {"Retry-After": "60"}, {})]
        demo = app(jar, tmp_path, server.url, flush_at="50")
        demo.do("track first 30")
        demo.do("track second 20")
        demo.kill()
        queued = sorted((tmp_path / "queue").glob("*.req"))
        assert len(queued) == 50
        # A write the process died in: a temporary file, never renamed.
        (tmp_path / "queue" / "9999999999999-000000.req.tmp").write_text('event\n{"uuid": "half')
        server.scripts["batch"] = [(200, {}, {"accepted": 50, "rejected": []})]
        again = app(jar, tmp_path, server.url, flush_at="50")
        assert again.value("drain 10") == "true"
        sent = [(event["event_type"], event["properties"]["n"]) for event in server.of("batch")[-1].body["events"]]
        assert sent == [("first", n) for n in range(30)] + [("second", n) for n in range(20)]
        assert not list((tmp_path / "queue").iterdir())
        again.exit()


def test_a_session_survives_the_background_and_a_cold_start_and_ends_after_the_timeout(jar, tmp_path):
    with scripted_server() as server:
        demo = app(jar, tmp_path, server.url, session_timeout="2")
        demo.do("foreground")
        first = demo.value("session")
        demo.do("track tap")
        demo.do("background")
        backgrounded = time.time()
        demo.kill()  # the OS kills it in the background
        demo = app(jar, tmp_path, server.url, session_timeout="2")
        demo.do("foreground")
        assert demo.value("session") == first, "a cold start within the timeout resumes the session"
        demo.do("background")
        backgrounded = time.time()
        time.sleep(2.3)
        demo.do("foreground")
        second = demo.value("session")
        assert second != first
        demo.do("track tap")
        assert demo.value("drain 10") == "true"
        starts, (end,) = server.of("session_start"), server.of("session_end")
        # At least once: a request answered just before the kill, its file not yet deleted, is
        # sent again by the next process (the server keys sessions and events by their ids).
        assert first_seen(start.body["session_id"] for start in starts) == [first, second]
        assert end.method == "PUT" and end.path == f"/api/v1/analytics/session/{first}/end/"
        # Stamped with when the app went to the background, not when the end was sent.
        ended = time.mktime(time.strptime(end.body["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert abs(ended - backgrounded) < 1.5
        assert end.at > starts[0].at
        assert {"sent_at", "distinct_id", "device_id"} <= set(end.body)
        events = [event for request in server.of("batch") for event in request.body["events"]]
        assert first_seen(event["session_id"] for event in events) == [first, second]
        demo.exit()


def test_flags_come_from_bootstrap_then_the_server_then_the_disk_cache_offline_and_expose_once(jar, tmp_path):
    blue = {
        "key": "beta",
        "enabled": True,
        "variant": "blue",
        "payload": {"x": 1},
        "reason": "condition_match",
        "condition_index": 0,
    }
    with scripted_server() as server:
        server.scripts["flags"] = [(503, {"Retry-After": "1"}, {"code": "buffer_full"})]
        demo = app(jar, tmp_path, server.url, bootstrap="beta=green,dark=true")
        wait_for(lambda: server.of("flags"), "the flags fetch at start")
        assert demo.value("flag beta") == "green"
        assert demo.value("flag dark") == "true"
        server.scripts["flags"] = [(200, {}, {"distinct_id": demo.distinct_id, "flags": {"beta": blue}})]
        demo.do("reload")
        wait_for(lambda: demo.value("flag beta") == "blue", "the fetched flags to be served")
        assert demo.value("payload beta") == "{x=1}"
        assert demo.value("flag dark") == "false", "once the server has answered, bootstrap values are gone"
        demo.do("flag beta")
        demo.exit()
        # A cold start offline: the cache on disk answers, and the exposure is not counted again.
        server.scripts["flags"] = [(503, {}, {})]
        again = app(jar, tmp_path, server.url)
        assert again.value("flag beta") == "blue"
        again.do("identify user-7")
        fetched = wait_for(
            lambda: [r.body for r in server.of("flags") if r.body["distinct_id"] == "user-7"], "a fetch on identify"
        )
        assert fetched == [{"distinct_id": "user-7", "person_properties": {}}]
        assert again.value("drain 10") == "true"
        again.exit()
    events = [event for request in server.of("batch") for event in request.body["events"]]
    exposures = [(e["distinct_id"], e["properties"]["$feature_flag"], e["properties"]["$feature_flag_response"])
                 for e in events if e["event_type"] == "$feature_flag_called"]  # fmt: skip
    # A flag the server does not know of reads as off and is no exposure.
    assert sorted(exposures) == sorted([(demo.distinct_id, "beta", "green"), (demo.distinct_id, "dark", True),
                                        (demo.distinct_id, "beta", "blue")])  # fmt: skip
    (identify,) = [e for e in events if e["event_type"] == "$identify"]
    assert identify["distinct_id"] == "user-7"
    assert identify["properties"] == {"$anon_distinct_id": demo.distinct_id, "$set": {"plan": "pro"}}


@pytest.mark.django_db(transaction=True)
def test_exactly_1000_events_are_stored_through_a_server_restart_and_an_app_killed_mid_send(
    jar, tmp_path, project, redis_client
):
    with running_tidelog(tmp_path, interface="rsgi") as (processes, command, query):
        admin = {"Authorization": f"Bearer {project.personal_api_key}", "Content-Type": "application/json"}
        flag = {"key": "onboarding", "enabled": True, "variants": [{"key": "short", "rollout_percentage": 100}]}
        assert http("POST", command + "admin/feature-flags/", json.dumps(flag).encode(), admin)[0] == 201
        port = int(command.split(":")[2].split("/")[0])
        assert processes.signal("command-api", signal.SIGTERM) == 0, processes.log("command-api")
        with holding_proxy(port) as proxy:
            storage = tmp_path / "app"
            first = DemoApp(jar, storage, proxy.url, project.api_key, base_backoff="0.2", max_backoff="1")
            first.do("foreground")
            session = first.value("session")
            first.do("track scenario_event 600")
            first.do("screen Home")
            first.do("track scenario_event 400")
            assert first.value("queue") == "1002 dropped 0"  # the session's start, 1,000 events, the screen
            wait_for(lambda: proxy.answers.count(0) >= 2, "the app to retry against the stopped server")
            # The server comes back; the first batch it stores is held: it has it, the app never hears.
            proxy.hold_next_batch.set()
            processes.restart("command-api")
            assert proxy.holding.wait(60), first.log()
            first.kill()
            proxy.release.set()
            held = proxy.held
            assert held is not None and len(held.uuids) == 100
            # Started again on the same storage: a cold start resumes the session, reads its flag.
            second = DemoApp(jar, storage, proxy.url, project.api_key, base_backoff="0.2", max_backoff="1")
            second.do("foreground")
            assert second.value("session") == session
            wait_for(lambda: second.value("flag onboarding") == "short", "the flag fetched from the live server")
            assert second.value("drain 60") == "true", second.log()
            second.exit()
        # The held batch was sent again, whole: the server stored it once.
        resent = [request for request in proxy.requests if request.uuids == held.uuids]
        assert len(resent) == 2

        def counts() -> dict[str, int]:
            status, body = http(
                "GET",
                query + "admin/events/event_counts/",
                headers={"Authorization": f"Bearer {project.personal_api_key}"},
            )
            assert status == 200, body
            return {row["event_type"]: row["count"] for row in body["results"]}

        expected = {"scenario_event": 1000, "$screen": 1, "$session_start": 1, "$feature_flag_called": 1}
        wait_for(
            lambda: counts() == expected, lambda: f"counts {counts()} to be {expected}", timeout=60, processes=processes
        )
        status, sessions = http(
            "GET", query + "admin/sessions/?limit=10", headers={"Authorization": f"Bearer {project.personal_api_key}"}
        )
        assert status == 200
        (stored,) = [s for s in sessions["results"] if not s["inferred"]]
        assert stored["session_id"] == session and stored["event_count"] >= 1002 and stored["screen_count"] == 1
        assert stored["app_version"] == "1.0.0" and stored["os_name"]


def first_seen(values: Iterable[str]) -> list[str]:
    """The values in the order each first appears, repeats left out."""
    return list(dict.fromkeys(values))
