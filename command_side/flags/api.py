"""Flag administration over HTTP, on the command host (it writes): DRF views at the seed's path
`admin/feature-flags/`, with a personal API key or a staff session, like the query API.

    GET    admin/feature-flags/                 list (?archived=true|false|all, ?limit, ?cursor)
    POST   admin/feature-flags/                 create
    GET    admin/feature-flags/{key}/           detail (from the aggregate: the newest state)
    PATCH  admin/feature-flags/{key}/           edit; the body names the `version` it edits
    DELETE admin/feature-flags/{key}/           archive (?version=N to refuse a stale archive)
    GET    admin/feature-flags/{key}/history/   the aggregate's events: what, who, when

Bodies are decoded with msgspec into service.FlagCreate / FlagPatch (unknown fields refused),
then the whole definition is validated (flags.definition.validate): every refusal names its
field in the error shape of docs/api.md.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_side.flags import service
from command_side.flags.aggregate import Flag
from command_side.models import FlagRow
from command_side.openapi import CURSOR, FLAG, FLAG_HISTORY, admin_operation, archived_filter
from contracts.errors import ErrorCode
from contracts.events import error_from_validation
from flags.definition import DefinitionError, FlagDefinition
from tenancy.access import project_for
from tenancy.api_errors import InvalidParameter
from tenancy.auth import KeyUser
from tenancy.openapi import page_of

MAX_LIMIT = 1000
ASCII_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_limit(request: Request) -> int:
    """An admin list's `?limit` (default 100): a whole number from 1 to MAX_LIMIT, in ASCII digits
    (str.isdigit() takes "²", which int() refuses), else 400 naming `limit`."""
    raw = request.query_params.get("limit") or "100"
    if not ASCII_DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidParameter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
    OpenApiParameter.QUERY,
    description="Rows per page.",
)
"""parse_limit's parameter, as the OpenAPI document names it."""


def list_page(request: Request, rows: list[Any], limit: int, cursor_of: Any) -> tuple[list[Any], str | None]:
    """`rows` (up to limit + 1 read) cut to `limit`, and the link to the next page (the same
    query, `cursor` set to `cursor_of` the last row kept), or None on the last page."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    following = request.query_params.copy()
    following["cursor"] = cursor_of(rows[-1])
    return rows, request.build_absolute_uri(f"{request.path}?{following.urlencode()}")


class BodyError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, code: ErrorCode, field: str | None, message: str) -> None:
        super().__init__(detail=message)
        self.default_code = code
        self.field = field


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT

    def __init__(self, code: ErrorCode, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail=message)
        self.default_code = code
        self.field = field
        self.extra = extra


def actor_of(request: Request) -> str:
    """Who a change is recorded as: a key by its visible prefix, a person by username."""
    user = request.user
    if isinstance(user, KeyUser):
        return f"key:{user.key.prefix}"
    return f"user:{user.get_username()}"


def decode[T](request: Request, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(request.body or b"{}", type=kind)
    except msgspec.DecodeError as exc:
        error = error_from_validation(exc)
        field = error.field.replace("[", ".").replace("]", "") if error.field else None
        raise BodyError(error.code, field, error.message) from exc


def refusal(exc: DefinitionError) -> BodyError:
    return BodyError(ErrorCode.INVALID_VALUE, exc.field, exc.message)


def flag_body(definition: FlagDefinition, *, name: str, description: str, meta: dict[str, Any]) -> dict[str, Any]:
    body = msgspec.to_builtins(definition)
    body.pop("version", None)
    return {"key": definition.key, "name": name, "description": description, "version": definition.version,
            **{k: v for k, v in body.items() if k != "key"}, **meta}  # fmt: skip


def aggregate_body(flag: Flag) -> dict[str, Any]:
    meta = {"created_by": flag.created_by, "created_at": flag.created_on, "updated_by": flag.updated_by,
            "updated_at": flag.modified_on}  # fmt: skip
    return flag_body(flag.definition(), name=flag.name, description=flag.description, meta=meta)


def row_body(row: FlagRow) -> dict[str, Any]:
    meta = {"created_by": row.created_by, "created_at": row.created_at, "updated_by": row.updated_by,
            "updated_at": row.updated_at}  # fmt: skip
    definition = msgspec.convert(row.definition, FlagDefinition)
    return flag_body(definition, name=row.name, description=row.description, meta=meta)


@contextmanager
def service_refusals() -> Iterator[None]:
    """The flag service's refusals as the API's answers: 404, 409 (naming the current version),
    400 naming the field of a broken rule."""
    try:
        yield
    except service.FlagNotFound as exc:
        raise NotFound(str(exc)) from exc
    except service.StaleVersion as exc:
        raise Conflict(ErrorCode.VERSION_CONFLICT, str(exc), "version", current_version=exc.current) from exc
    except service.FlagKeyTaken as exc:
        raise Conflict(ErrorCode.DUPLICATE_KEY, str(exc), "key") from exc
    except service.FlagArchived as exc:
        raise Conflict(ErrorCode.ARCHIVED, str(exc)) from exc
    except DefinitionError as exc:
        raise refusal(exc) from exc


class FlagListView(APIView):
    @admin_operation("List the flags", page_of(FLAG), archived_filter(), LIMIT, CURSOR)
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        archived = query.get("archived", "false")
        if archived not in ("true", "false", "all"):
            raise InvalidParameter("archived", "archived is true, false or all")
        limit = parse_limit(request)
        rows = FlagRow.objects.filter(project_id=project_id).order_by("key")
        if archived != "all":
            rows = rows.filter(archived=archived == "true")
        if cursor := query.get("cursor"):
            rows = rows.filter(key__gt=cursor)
        page, next_url = list_page(request, list(rows[: limit + 1]), limit, lambda row: row.key)
        return Response({"results": [row_body(row) for row in page], "next": next_url})

    @admin_operation("Create a flag", FLAG, body=service.FlagCreate, status=201, conflicts=(ErrorCode.DUPLICATE_KEY,))
    def post(self, request: Request) -> Response:
        project_id = project_for(request)
        fields = decode(request, service.FlagCreate)
        with service_refusals():
            flag = service.flag_create(project_id=project_id, fields=fields, actor=actor_of(request))
        return Response(aggregate_body(flag), status=status.HTTP_201_CREATED)


class FlagDetailView(APIView):
    @admin_operation("A flag, from its aggregate: the newest state", FLAG)
    def get(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        with service_refusals():
            return Response(aggregate_body(service.flag_get(project_id=project_id, key=key)))

    @admin_operation(
        "Edit a flag: the body names the `version` it edits",
        FLAG,
        body=service.FlagPatch,
        conflicts=(ErrorCode.VERSION_CONFLICT, ErrorCode.ARCHIVED),
    )
    def patch(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        patch = decode(request, service.FlagPatch)
        with service_refusals():
            flag = service.flag_update(project_id=project_id, key=key, patch=patch, actor=actor_of(request))
        return Response(aggregate_body(flag))

    @admin_operation(
        "Archive a flag (`?version=` refuses a stale archive)",
        FLAG,
        OpenApiParameter("version", int, description="The version the archive is made against."),
        conflicts=(ErrorCode.VERSION_CONFLICT,),
    )
    def delete(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        raw = request.query_params.get("version")
        if raw is not None and not raw.isdigit():
            raise InvalidParameter("version", "version must be a whole number")
        version = int(raw) if raw is not None else None
        with service_refusals():
            flag = service.flag_archive(project_id=project_id, key=key, version=version, actor=actor_of(request))
        return Response(aggregate_body(flag))


class FlagHistoryView(APIView):
    @admin_operation("A flag's history: every change, who made it and when, oldest first", FLAG_HISTORY)
    def get(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        with service_refusals():
            entries = service.flag_history(project_id=project_id, key=key)
        return Response({"key": key, "results": [msgspec.to_builtins(entry) for entry in entries]})
