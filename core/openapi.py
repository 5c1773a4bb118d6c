"""One OpenAPI document for both URL roots: the DRF views of the query host and of the command
host (drf-spectacular walks each root), and the command host's fast path (its routes, which
bypass Django, from fast_path.ROUTES and command_side/openapi.py). Served by the query host at
/api/v1/schema/, with Swagger UI at /api/v1/schema/swagger/ (docs/api.md, "OpenAPI").

Which host serves an operation is its tag (`command` or `query`) and its `x-tidelog-host`:
behind nginx both are one origin, so the paths alone are what a client calls.
"""

from typing import Any, ClassVar

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular import generators
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request

from command_side import fast_path
from command_side import openapi as command_openapi
from tenancy import openapi as shared_openapi

URL_ROOTS = {"query": "core.urls_query", "command": "core.urls_command"}
"""Each host's URL root, by the name its operations are tagged with."""
API_PREFIX = "/api/"
SCHEMA_PREFIX = "/api/v1/schema/"
HOST_TAGS = [
    {
        "name": "query",
        "description": "The query host (`make run`: :8001): reads for dashboards and analysts, from read models.",
    },
    {
        "name": "command",
        "description": "The command host (`make run`: :8000): ingestion and flag evaluation for SDKs (the fast path),"
        " flag, experiment and erasure administration.",
    },
]
EndpointRow = tuple[str, str, str, Any]


def is_api_path(route: str) -> bool:
    """Whether a route belongs in the schema: everything under /api/ but the schema itself.
    Pages for people (the Django admin at /admin/, the dashboard under /) are not API."""
    return route.startswith(API_PREFIX) and not route.startswith(SCHEMA_PREFIX)


def api_routes_only(endpoints: list[EndpointRow]) -> list[EndpointRow]:
    """drf-spectacular's preprocessing hook (settings.SPECTACULAR_SETTINGS): is_api_path."""
    return [endpoint for endpoint in endpoints if is_api_path(endpoint[0])]


def url_patterns(host: str) -> list[URLPattern | URLResolver]:
    return list(get_resolver(URL_ROOTS[host]).url_patterns)


class SchemaGenerator(generators.SchemaGenerator):
    """drf-spectacular's generator over both URL roots, plus the fast path's operations."""

    def parse(self, input_request: Request | None, public: bool) -> dict[str, dict[str, Any]]:
        paths: dict[str, dict[str, Any]] = {}
        for host in URL_ROOTS:
            self.patterns, self.endpoints = url_patterns(host), None
            for route, operations in super().parse(input_request, public).items():  # type: ignore[no-untyped-call]
                for method, operation in operations.items():
                    add_operation(paths, route, method, operation, host)
        for fast in fast_path.ROUTES:
            for method in fast.methods:
                operation = dict(command_openapi.FAST_PATH[fast.template, method.lower()])
                operation["operationId"] = shared_openapi.operation_id(fast.template, method)
                add_operation(paths, fast_path.PREFIX + fast.template, method.lower(), operation, "command")
        return paths

    def get_schema(self, request: Request | None = None, public: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super().get_schema(request, public)  # type: ignore[no-untyped-call]
        components = schema.setdefault("components", {})
        structs = shared_openapi.struct_components()
        command_openapi.refine(structs)
        components.setdefault("schemas", {}).update(structs)
        components.setdefault("securitySchemes", {}).update(command_openapi.SECURITY_SCHEMES)
        schema["tags"] = HOST_TAGS
        return schema


def add_operation(
    paths: dict[str, dict[str, Any]], route: str, method: str, operation: dict[str, Any], host: str
) -> None:
    # TRICKY: nginx routes by path alone, so one path served by both hosts would be a routing bug.
    if route in paths and any(other.get("x-tidelog-host") != host for other in paths[route].values()):
        raise ValueError(f"{route} is served by both hosts")
    paths.setdefault(route, {})[method] = {**operation, "tags": [host], "x-tidelog-host": host}


class SchemaView(SpectacularAPIView):
    """SpectacularAPIView, its answer kept per format for the life of the process. The document
    changes only with a deploy, and generating it and rendering it costs 0.3 s (JSON) to 0.7 s
    (YAML) of CPU (measured on this machine kind): a public URL must not spend that per request."""

    generator_class = SchemaGenerator
    answers: ClassVar[dict[tuple[str, str], tuple[str | bytes, dict[str, str]]]] = {}

    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        renderer, media_type = request.accepted_renderer, request.accepted_media_type
        key = (renderer.format, media_type)
        if key not in self.answers:
            generated = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
            charset = f"; charset={renderer.charset}" if renderer.charset else ""
            headers = {**generated.headers, "Content-Type": f"{media_type}{charset}"}
            body = renderer.render(generated.data, media_type, {"request": request, "view": self})
            self.answers[key] = (body, headers)
        body, headers = self.answers[key]
        return HttpResponse(body, headers=headers)
