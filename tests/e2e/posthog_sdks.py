"""What the tests of PostHog's own SDKs share (tests/e2e/test_posthog_python.py,
test_posthog_node.py, tests/browser/test_posthog_js.py): the flags they evaluate, the users
they evaluate them for, a live Tidelog holding those flags, and Tidelog's own answers to compare
the SDKs' with."""

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import Processes

Stack = tuple[Processes, str, str]
"""The running processes, the command and the query API's base URLs."""

FLAGS: list[dict[str, Any]] = [
    {"key": "beta", "enabled": True, "rollout_percentage": 50, "payload": {"color": "blue"}},
    {
        "key": "checkout",
        "enabled": True,
        "variants": [
            {"key": "control", "rollout_percentage": 50, "payload": "old"},
            {"key": "test", "rollout_percentage": 50, "payload": {"steps": 2}},
        ],
        "conditions": [
            {"properties": [{"key": "plan", "operator": "exact", "value": ["pro", "team"]}], "rollout_percentage": 80},
            {"properties": [{"key": "app_version", "operator": "semver_gte", "value": "2.0.0"}], "variant": "test"},
        ],
    },
    {"key": "vip", "enabled": True, "rollout_percentage": 0, "overrides": {"user-3": True}},
    {"key": "off", "enabled": False},
]
USERS = [(f"user-{n}", {"plan": ("pro", "free", "team")[n % 3], "app_version": f"{1 + n % 3}.0.0"}) for n in range(30)]


@contextmanager
def tidelog_with_flags(tmp_path: Path, project: Any) -> Iterator[Stack]:
    """Every Tidelog process (the command API as `make run` serves it), FLAGS created through the
    admin API."""
    with running_tidelog(tmp_path, interface="rsgi") as (processes, command, query):
        admin = {"Authorization": f"Bearer {project.personal_api_key}", "Content-Type": "application/json"}
        for flag in FLAGS:
            status, body = http("POST", command + "admin/feature-flags/", json.dumps(flag).encode(), admin)
            assert status == 201, body
        yield processes, command, query


def host_of(command: str) -> str:
    return command.removesuffix("/api/v1/analytics/")


def query_get(query: str, project: Any, path: str) -> Any:
    status, body = http("GET", query + path, headers={"Authorization": f"Bearer {project.personal_api_key}"})
    assert status == 200, body
    return body


def tidelog_for_user(command: str, project: Any, distinct_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    params = urllib.parse.urlencode({"distinct_id": distinct_id, "person_properties": json.dumps(properties)})
    status, body = http(
        "GET",
        f"{command}public/feature-flags/for_user/?{params}",
        headers={"Authorization": f"Bearer {project.api_key}"},
    )
    assert status == 200, body
    return body["flags"]  # type: ignore[no-any-return]
