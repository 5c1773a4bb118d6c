"""PostHog's own Node.js SDK (posthog-node from npm, pinned in tests/sdk/node/package-lock.json),
unchanged but for its host, against a live Tidelog (every process, the command API as `make run`
serves it): events, `$identify` with `$set`/`$set_once`/`$anon_distinct_id`, and aliases land in
Tidelog's read models; flags and payloads answer as Tidelog's own for_user does, evaluated
remotely and locally. tests/sdk/node/flow.mjs drives the SDK, JSON in and out."""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import node_sdks
from tests.e2e.posthog_sdks import USERS, Stack, host_of, query_get, tidelog_for_user, tidelog_with_flags
from tests.process_helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = node_sdks.SDK_DIR / "flow.mjs"
KEYS = ["beta", "checkout", "off", "vip"]


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return node_sdks.install()


@pytest.fixture
def tidelog(tmp_path: Path, redis_client: Any, project: Any, node_modules: Path) -> Iterator[Stack]:
    with tidelog_with_flags(tmp_path, project) as stack:
        yield stack


def run_flow(node_modules: Path, project: Any, command: str, **steps: Any) -> dict[str, Any]:
    """flow.mjs with `steps` (its `calls` and/or `flags`): its JSON answer, no SDK error in it."""
    given = {
        "host": host_of(command),
        "apiKey": project.api_key,
        "personalApiKey": project.personal_api_key,
        "nodeModules": str(node_modules),
        **steps,
    }
    node = shutil.which("node")
    assert node is not None  # node_sdks.install() skipped otherwise
    done = subprocess.run(
        [node, str(FLOW)], input=json.dumps(given), capture_output=True, text=True, timeout=45, check=False
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    assert answer["errors"] == [], answer["errors"]
    return answer


def test_events_identify_and_alias_from_the_node_sdk_reach_the_read_models(
    tidelog: Stack, project: Any, node_modules: Path
) -> None:
    _, command, query = tidelog
    calls = [
        {"method": "capture", "args": {"distinctId": "anon-1", "event": "app_opened",
                                       "properties": {"$app_version": "2.1.0", "screen": "home"}}},
        {"method": "capture", "args": {"distinctId": "anon-1", "event": "app_opened",
                                       "properties": {"$session_id": "s-node-1"}}},
        # The anonymous id merges into the user's; $set and $set_once become person properties.
        {"method": "identify", "args": {"distinctId": "user-1", "properties": {
            "$set": {"plan": "pro"}, "$set_once": {"source": "ad"}, "$anon_distinct_id": "anon-1"}}},
        {"method": "identify", "args": {"distinctId": "user-1", "properties": {"$set_once": {"source": "later"}}}},
        # posthog-node: `alias` is the other id, merged into `distinctId`'s person.
        {"method": "alias", "args": {"distinctId": "user-1", "alias": "device-1"}},
        # Tidelog's people are the ids seen: the alias's own first event, after the alias, joins it.
        {"method": "capture", "args": {"distinctId": "device-1", "event": "app_opened", "properties": {}}},
        {"method": "capture", "args": {"distinctId": "user-1", "event": "purchase_completed",
                                       "properties": {"$app_version": "2.1.0", "$session_id": "s-node-1", "amount": 12}}},
    ]  # fmt: skip
    run_flow(node_modules, project, command, calls=calls)

    def counts() -> dict[str, int]:
        body = query_get(query, project, "admin/events/event_counts/")
        return {row["event_type"]: row["count"] for row in body["results"]}

    wanted = {"app_opened": 3, "$identify": 2, "$create_alias": 1, "purchase_completed": 1}
    wait_for(lambda: counts() == wanted, lambda: f"the query API to count {wanted}, not {counts()}")

    anonymous = query_get(query, project, "admin/events/?distinct_id=anon-1")["results"]
    first = next(e for e in anonymous if e["properties"].get("screen") == "home")
    assert first["app_version"] == "2.1.0"
    assert first["properties"]["$lib"] == "posthog-node"
    assert [e["session_id"] for e in anonymous if e["properties"].get("screen") is None] == ["s-node-1"]
    identified = query_get(query, project, "admin/events/?distinct_id=user-1")["results"]
    purchase = next(e for e in identified if e["event_type"] == "purchase_completed")
    assert (purchase["app_version"], purchase["session_id"]) == ("2.1.0", "s-node-1")
    assert purchase["properties"]["amount"] == 12

    def person() -> dict[str, Any] | None:
        found = query_get(query, project, "admin/people/?distinct_id=device-1")["results"]
        return found[0] if found and len(found[0]["distinct_ids"]) == 3 else None

    merged = wait_for(person, "the identify and the alias to merge anon-1, user-1 and device-1")
    assert merged is not None
    assert sorted(merged["distinct_ids"]) == ["anon-1", "device-1", "user-1"]
    # $set_once keeps the first value: the second identify's "later" does not replace "ad".
    assert merged["properties"] == {"plan": "pro", "source": "ad"}
    assert merged["is_identified"] is True
    by_anonymous_id = query_get(query, project, "admin/people/?distinct_id=anon-1")["results"]
    assert [person["person_id"] for person in by_anonymous_id] == [merged["person_id"]]


def expected_answers(command: str, project: Any) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Tidelog's for_user for every user: key -> (the SDK's flag value, its payload)."""
    answers = {}
    for distinct_id, properties in USERS:
        flags = tidelog_for_user(command, project, distinct_id, properties)
        answers[distinct_id] = {
            key: (
                flags[key]["variant"] or flags[key]["enabled"],
                flags[key]["payload"] if flags[key]["enabled"] else None,
            )
            for key in KEYS
        }
    return answers


def test_node_flags_and_payloads_answer_as_tidelogs_own_evaluation_remotely_and_locally(
    tidelog: Stack, project: Any, node_modules: Path
) -> None:
    _, command, _ = tidelog
    answer = run_flow(node_modules, project, command, flags={"keys": KEYS, "users": USERS})
    expected = expected_answers(command, project)
    # Not a degenerate sample: the users get both answers of beta and both variants of checkout.
    assert {expected[user]["beta"][0] for user, _ in USERS} == {True, False}
    assert {expected[user]["checkout"][0] for user, _ in USERS} >= {"control", "test"}

    for distinct_id, _ in USERS:
        remote = {key: (a["flag"], a["payload"]) for key, a in answer["remote"][distinct_id].items()}
        evaluated = {key: (a["evaluated"], a["evaluatedPayload"]) for key, a in answer["remote"][distinct_id].items()}
        local = {key: (a["flag"], a["payload"]) for key, a in answer["local"][distinct_id].items()}
        assert remote == expected[distinct_id], distinct_id
        assert evaluated == expected[distinct_id], distinct_id
        assert local == expected[distinct_id], distinct_id

    assert answer["localReady"] is True
    assert answer["localKeys"] == KEYS
    for distinct_id, _ in USERS:
        only_locally = {key: a["localOnly"] for key, a in answer["local"][distinct_id].items()}
        # Decided from the definitions alone, but vip: its override makes the SDK ask the server.
        assert only_locally == {**{key: expected[distinct_id][key][0] for key in KEYS}, "vip": None}, distinct_id
    assert answer["local"]["user-3"]["vip"]["flag"] is True
