"""The OpenAPI document at /api/v1/schema/ (core/openapi.py): valid OpenAPI 3.1; its operations
are exactly the routes both hosts implement (walked from both URL roots and the fast path's route
table, never listed here), each tagged with the host that serves it, as nginx routes it; the
answers the endpoints really give fit the documented shapes and error codes; Swagger UI loads
nothing from another host."""

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from command_side import fast_path
from core.openapi import URL_ROOTS, is_api_path
from tests.integration.test_query_api import SAMPLES, seed_everything

pytestmark = pytest.mark.django_db
SCHEMA_URL = "/api/v1/schema/"
NGINX_ROUTES = Path(__file__).resolve().parents[2] / "docker" / "nginx-routes.conf"
NGINX_UPSTREAMS = {"command_api": "command", "query_api": "query"}
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
_TEMPLATE_PART = re.compile(r"\{(\w+)\}")
Operation = tuple[str, str]
"""(path as OpenAPI spells it, METHOD)."""


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        response = Client().get(SCHEMA_URL, {"format": "json"})
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def required_query(operation: dict[str, Any], leave_out: str | None = None) -> dict[str, Any]:
    """The operation's required query parameters, each with its documented example."""
    return {
        p["name"]: p["schema"]["examples"][0]
        for p in operation.get("parameters", ())
        if p["in"] == "query" and p.get("required") and p["name"] != leave_out
    }


def sample_url(path: str) -> str:
    """An OpenAPI path with the route tests' sample value for each `{parameter}`."""
    return _TEMPLATE_PART.sub(lambda match: SAMPLES.get(match[1], "sample"), path)


# --- the routes, walked from the code ----------------------------------------------------------


def django_routes(urlconf: str) -> Iterator[tuple[str, Any]]:
    """(route as OpenAPI spells it, view callback) of every URL pattern of a URL root."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[tuple[str, Any]]:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            else:
                yield _PARAMETER.sub(r"{\1}", route), entry.callback

    return walk(get_resolver(urlconf).url_patterns, "/")


def methods_of(route: str, callback: Any) -> set[str]:
    view_class = getattr(callback, "cls", None)  # DRF's as_view() keeps its APIView class there
    if view_class is not None:
        ignored = {"options", "head", "trace"}  # answered by any view: not operations of their own
        return {m.upper() for m in view_class.http_method_names if m not in ignored and hasattr(view_class, m)}
    found = fast_path.route(sample_url(route))
    assert found is not None, (
        f"{route} is neither a DRF view nor a fast path route: drf-spectacular cannot document it"
        " (make it an APIView, or a fast_path.ROUTES entry with its operation in command_side/openapi.py)"
    )
    return set(found.methods)


def implemented() -> dict[Operation, str]:
    """Every API operation the code serves, with the host that serves it."""
    served: dict[Operation, str] = {}
    for host, urlconf in URL_ROOTS.items():
        for route, callback in django_routes(urlconf):
            if is_api_path(route):
                for method in methods_of(route, callback):
                    assert served.setdefault((route, method), host) == host, f"{method} {route} on both hosts"
    for route in fast_path.ROUTES:
        for method in route.methods:
            assert served.setdefault((fast_path.PREFIX + route.template, method), "command") == "command"
    return served


def test_the_schema_documents_exactly_the_routes_both_hosts_serve(schema):
    served = implemented()
    assert len(served) > 30  # both roots and the fast path were walked
    documented = {(path, method) for path, method, _ in operations(schema)}
    assert documented - set(served) == set(), "documented, not served"
    assert set(served) - documented == set(), "served, not documented"


def test_each_operation_is_tagged_with_the_host_that_serves_it(schema):
    served = implemented()
    for path, method, operation in operations(schema):
        assert operation["x-tidelog-host"] == served[path, method], f"{method} {path}"
        assert operation["tags"] == [served[path, method]]
    assert {tag["name"] for tag in schema["tags"]} == set(URL_ROOTS)


def test_pages_for_people_are_not_api_routes():
    assert not is_api_path("/admin/") and not is_api_path("/") and not is_api_path("/static/x.css")
    assert not is_api_path(SCHEMA_URL) and not is_api_path(SCHEMA_URL + "swagger/")
    assert is_api_path("/api/v1/analytics/admin/events/")


# --- nginx sends each path to the host the schema names -----------------------------------------


def nginx_locations() -> list[tuple[str, str, str]]:
    """(modifier, path or regex, upstream) of each location of the public origin's routes (the
    file both nginx configurations include), in order."""
    server = NGINX_ROUTES.read_text()
    found = []
    for modifier, where, body in re.findall(r"location\s+(?:(=|\^~|~\*?)\s+)?(\S+)\s*\{(.*?)\}", server, re.S):
        upstream = re.search(r"proxy_pass\s+http://(\w+)", body)
        if not where.startswith("@") and upstream:
            found.append((modifier, where, upstream[1]))
    return found


def nginx_host(path: str) -> str:
    """nginx's choice: an exact `=` match; else the longest prefix, final when `^~`; else the
    first regex that matches; else that longest prefix."""
    locations = nginx_locations()
    for modifier, where, upstream in locations:
        if modifier == "=" and path == where:
            return NGINX_UPSTREAMS[upstream]
    prefixes = [(where, m, up) for m, where, up in locations if m in ("", "^~") and path.startswith(where)]
    longest = max(prefixes, key=lambda entry: len(entry[0]))
    if longest[1] != "^~":
        for modifier, where, upstream in locations:
            if modifier.startswith("~") and re.search(where, path):
                return NGINX_UPSTREAMS[upstream]
    return NGINX_UPSTREAMS[longest[2]]


def test_nginx_sends_every_documented_path_to_the_host_that_serves_it(schema):
    for path, method, operation in operations(schema):
        assert nginx_host(sample_url(path)) == operation["x-tidelog-host"], f"{method} {path}"


def test_nginx_sends_the_schema_and_swagger_ui_to_the_query_host():
    for path in (SCHEMA_URL, SCHEMA_URL + "swagger/", "/static/drf_spectacular_sidecar/swagger-ui-dist/x.js"):
        assert nginx_host(path) == "query"


# --- the document -----------------------------------------------------------------------------


def test_the_schema_is_valid_openapi_3_1(schema):
    assert schema["openapi"].startswith("3.1")
    validate(schema)
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))


def test_the_schema_is_public_and_yaml_by_default(client, schema):
    response = client.get(SCHEMA_URL, HTTP_AUTHORIZATION="Bearer tls_not-a-key")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content) == schema


def test_every_operation_has_a_summary_and_a_described_success(schema):
    for path, method, operation in operations(schema):
        assert operation.get("summary"), f"{method} {path}: give it @extend_schema(summary=…) (query_side/openapi.py)"
        success = [status for status in operation["responses"] if status.startswith("2")]
        assert success, f"{method} {path} documents no success"
        for status in success:
            body = operation["responses"][status].get("content", {}).get("application/json", {}).get("schema")
            assert body and body != {"type": "object", "description": "Unspecified response body"}, (
                f"{method} {path}: its {status} answer has no documented shape"
            )


def test_every_503_says_when_to_retry(schema):
    for path, method, operation in operations(schema):
        assert "Retry-After" in operation["responses"]["503"]["headers"], f"{method} {path}"


def test_request_bodies_are_the_contracts_structs(schema):
    components = schema["components"]["schemas"]
    capture = components["CaptureIn"]
    assert capture["required"] == ["event_type", "distinct_id"]
    assert capture["properties"]["event_type"]["maxLength"] == 200
    assert components["BatchIn"]["properties"]["events"]["maxItems"] == 1000
    assert components["BatchIn"]["properties"]["events"]["items"] == {"$ref": "#/components/schemas/EventIn"}


# --- the real answers fit the documented ones -----------------------------------------------------


def documented(operation: dict[str, Any], status: int, schema: dict[str, Any]) -> dict[str, Any]:
    assert str(status) in operation["responses"], f"{operation['operationId']} does not document a {status}"
    body = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return {"allOf": [body], "components": schema["components"]}  # its $refs resolve in the document


def assert_fits(response: Any, operation: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.validate(response.json(), documented(operation, response.status_code, schema))


def query_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [op for op in operations(schema) if op[2]["x-tidelog-host"] == "query"]


def test_every_query_answer_fits_its_documented_shape(client, schema, project):
    seed_everything(project.project_id)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {project.personal_api_key}"}
    for path, _, operation in query_operations(schema):
        required = required_query(operation)
        variants: list[dict[str, Any]] = [required]
        for parameter in operation["parameters"]:
            if parameter["name"] == "breakdown":
                # Each documented breakdown (trends' free-form one lists examples).
                spec = parameter["schema"]
                variants.extend(
                    {**required, "breakdown": value} for value in spec.get("enum", spec.get("examples", []))
                )
        for query in variants:
            response = client.get(sample_url(path), query, **headers)
            assert response.status_code == 200, (path, query, response.content[:300])
            assert_fits(response, operation, schema)


def drf_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    fast = {(fast_path.PREFIX + route.template, m) for route in fast_path.ROUTES for m in route.methods}
    return [op for op in operations(schema) if (op[0], op[1]) not in fast]


def bad_value(parameter: dict[str, Any]) -> str | None:
    """A value the parameter's documented schema refuses, or None when it takes any text. (The
    fast path's parameters are tested with its endpoints.)"""
    spec = parameter["schema"].get("items", parameter["schema"])
    if "enum" in spec:
        return "not-one-of-them"
    if spec.get("type") in ("integer", "number"):
        return "twelve"
    if spec.get("format") == "date-time":
        return "yesterday-ish"
    if "pattern" in spec:
        return "!!!"
    if "maxLength" in spec:
        return "x" * (spec["maxLength"] + 1)
    return None


def test_every_documented_query_parameter_is_read_and_refused_with_a_documented_400(schema, project):
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True, is_superuser=True)
    checked = 0
    parameters = [(*op, p) for op in drf_operations(schema) for p in op[2].get("parameters", ()) if p["in"] == "query"]
    for path, method, operation, parameter in parameters:
        value = bad_value(parameter)
        if value is None:
            continue
        client = Client()
        headers = {}
        if parameter["name"] == "project_id" or operation["security"] == [{"cookieAuth": []}]:
            client.force_login(staff)  # a personal key's project is its own: project_id is a staff's
        else:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {project.personal_api_key}"
        query = {**required_query(operation, leave_out=parameter["name"]), parameter["name"]: value}
        if parameter["name"] != "project_id" and "HTTP_AUTHORIZATION" not in headers:
            query["project_id"] = str(project.project_id)
        with override_settings(ROOT_URLCONF=URL_ROOTS[operation["x-tidelog-host"]]):
            pairs = [(k, item) for k, v in query.items() for item in (v if isinstance(v, list) else [v])]
            url = f"{sample_url(path)}?{'&'.join(f'{k}={v}' for k, v in pairs)}"
            response = client.generic(method, url, **headers)
        assert response.status_code == 400, (method, path, parameter["name"], response.content[:300])
        assert_fits(response, operation, schema)
        assert response.json()["field"] == parameter["name"], (method, path)
        checked += 1
    assert checked > 40


@pytest.mark.parametrize("host", list(URL_ROOTS))
def test_the_authentication_refusals_are_documented_on_every_operation(schema, project, host):
    non_staff = get_user_model().objects.create_user("someone", password="x")
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    refusals = [
        ({}, {}, 401),  # nobody
        ({"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"}, {}, 401),  # a project's public key
        ({}, {"user": non_staff}, 403),
        ({}, {"user": staff, "project_id": "987654321"}, 404),  # a project that does not exist
    ]
    drf = [op for op in drf_operations(schema) if op[2]["x-tidelog-host"] == host]
    assert drf
    for path, method, operation in drf:
        for headers, login, status in refusals:
            client = Client()
            if "user" in login:
                client.force_login(login["user"])
            url = sample_url(path) + (f"?project_id={login['project_id']}" if "project_id" in login else "")
            with override_settings(ROOT_URLCONF=URL_ROOTS[host]):
                response = client.generic(method, url, "{}", "application/json", **headers)
            assert response.status_code == status, (method, path, status, response.content[:300])
            assert_fits(response, operation, schema)


# --- Swagger UI -------------------------------------------------------------------------------


def test_swagger_ui_loads_only_this_hosts_static_files(client):
    page = client.get(SCHEMA_URL + "swagger/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []  # no other host, no CDN
    assert '"validatorUrl": null' in html  # nor Swagger UI's own validator badge
    assert f'url: "{SCHEMA_URL}"' in html  # the document it shows is this host's
    files = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(files) >= 3 and all(file.startswith("/static/drf_spectacular_sidecar/") for file in files), files
    for file in files:
        response = client.get(file)
        assert response.status_code == 200, file
        assert b"".join(response.streaming_content if response.streaming else [response.content])


def test_docs_api_md_lists_every_parameter_the_schema_names(schema):
    """The prose and the schema agree (docs/api.md's table of the query API; `project_id` is
    described once for all, under Authentication)."""
    from tests.integration.test_fuzz_query import documented_parameters

    parameters = documented_parameters()
    assert parameters
    for documented_path, names in parameters.items():
        operation = schema["paths"][documented_path.partition("?")[0]]["get"]
        named = {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "query"}
        assert named - {"project_id"} <= names, documented_path


def test_swagger_ui_shows_every_operation_in_a_browser_asking_no_other_host(live_server, schema):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's Chromium is absent (apt-get install chromium): Swagger UI not rendered")
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(live_server.url + SCHEMA_URL + "swagger/")
            page.wait_for_selector(".opblock")
            shown = page.locator(".opblock").count()
            errors = page.locator(".errors-wrapper").count()
        finally:
            browser.close()
    assert shown == len(list(operations(schema))) and errors == 0
    assert requested and all(url.startswith(live_server.url + "/") for url in requested), requested


def test_the_command_hosts_answers_fit_their_documented_shapes(schema, project, redis_client):
    """Ingestion, flag evaluation and the administration, answering and refusing, as SDKs and
    admins call them (through the Django views of the same endpoints; the fast path's parity with
    them is test_fast_path_parity.py's)."""
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True, is_superuser=True)
    sdk = {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"}
    admin = {"HTTP_AUTHORIZATION": f"Bearer {project.personal_api_key}"}
    flag = {"key": "checkout", "enabled": True, "variants": [{"key": "control", "rollout_percentage": 50},
                                                                {"key": "test", "rollout_percentage": 50}]}  # fmt: skip
    experiment = {"key": "exp", "flag_key": "checkout", "goal_event": "purchase"}
    event = {"event_type": "app_opened", "distinct_id": "u1"}
    calls = [
        ("POST", "capture/", event, sdk, 200),
        ("POST", "capture/", {"distinct_id": "u1"}, sdk, 400),
        ("POST", "capture/", event, {}, 401),
        ("POST", "batch/", {"events": [event, {"event_type": ""}]}, sdk, 200),
        ("POST", "batch/", {"events": []}, sdk, 400),
        ("POST", "batch/", {"events": [{"event_type": ""}]}, sdk, 400),
        ("POST", "session/start/", {"distinct_id": "u1", "session_id": "s1"}, sdk, 201),
        ("PUT", "session/s1/end/", {"distinct_id": "u1"}, sdk, 200),
        ("POST", "admin/feature-flags/", flag, admin, 201),
        ("POST", "admin/feature-flags/", flag, admin, 409),
        ("GET", "admin/feature-flags/", None, admin, 200),
        ("PATCH", "admin/feature-flags/checkout/", {"version": 1, "name": "Checkout"}, admin, 200),
        ("PATCH", "admin/feature-flags/checkout/", {"version": 1, "name": "Stale"}, admin, 409),
        ("GET", "admin/feature-flags/checkout/history/", None, admin, 200),
        ("GET", "public/feature-flags/", None, sdk, 200),
        ("GET", "public/feature-flags/for_user/?distinct_id=u1", None, sdk, 200),
        (
            "POST",
            "public/feature-flags/for_user/",
            {"distinct_id": "u1", "person_properties": {"plan": "pro"}},
            sdk,
            200,
        ),
        ("GET", "public/feature-flags/for_user/", None, sdk, 400),
        ("POST", "admin/experiments/", experiment, admin, 201),
        ("GET", "admin/experiments/", None, admin, 200),
        ("GET", "admin/experiments/exp/", None, admin, 200),
        ("DELETE", "admin/experiments/exp/", None, admin, 200),
        ("PATCH", "admin/experiments/exp/", {"name": "late"}, admin, 409),
        ("DELETE", "admin/feature-flags/checkout/", None, admin, 200),
        ("GET", f"admin/erasures/?project_id={project.project_id}", None, "staff", 200),
        ("POST", f"admin/erasures/?project_id={project.project_id}", {"distinct_id": "u1"}, "staff", 200),
        ("POST", f"admin/erasures/?project_id={project.project_id}", {}, "staff", 400),
    ]
    templates = {re.sub(_TEMPLATE_PART, "[^/]+", path) + "$": path for path in schema["paths"]}
    with override_settings(ROOT_URLCONF=URL_ROOTS["command"]):
        for method, path, body, headers, status in calls:
            client = Client()
            if headers == "staff":
                client.force_login(staff)
                headers = {}
            url = fast_path.PREFIX + path
            payload = json.dumps(body) if body is not None else ""
            response = client.generic(method, url, payload, "application/json", **headers)
            assert response.status_code == status, (method, path, response.content[:300])
            documented_path = next(v for k, v in templates.items() if re.match(k, url.partition("?")[0]))
            assert_fits(response, schema["paths"][documented_path][method.lower()], schema)
