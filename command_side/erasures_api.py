"""Erasure of a person (GDPR) over HTTP, on the command host (it deletes): staff users only,
never a personal API key, the project named with `?project_id=` as in the rest of admin/.

    POST admin/erasures/    {"distinct_id": "..."} or {"person_id": "<uuid>"}: erase now, 200
                            with the log entry (what went, never which ids)
    GET  admin/erasures/    the project's erasure log, newest first (?limit, ?cursor)
"""

import uuid

import msgspec
from rest_framework import exceptions, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_side.erasure import erasure_body, person_erase
from command_side.flags.api import (
    ASCII_DIGITS,
    LIMIT,
    BodyError,
    Conflict,
    actor_of,
    decode,
    list_page,
    parse_limit,
)
from command_side.models import ErasureLog
from command_side.openapi import ERASURE, ERASURE_CURSOR, admin_operation
from contracts import limits
from contracts.errors import ErrorCode
from projections.erasure import ErasureRefused, PersonNotFound, ReplayInProgress
from tenancy.access import project_for
from tenancy.api_errors import InvalidParameter
from tenancy.auth import KeyUser
from tenancy.openapi import page_of


class ErasureRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    distinct_id: str | None = None
    person_id: uuid.UUID | None = None


def staff_project_for(request: Request) -> int:
    """The project a staff user names; anyone else (a personal API key included) is refused."""
    if isinstance(request.user, KeyUser) or not getattr(request.user, "is_staff", False):
        raise exceptions.PermissionDenied("Erasure is for staff users only (a personal API key cannot erase).")
    return project_for(request)


class ErasureListView(APIView):
    @admin_operation(
        "The project's erasure log, newest first", page_of(ERASURE), LIMIT, ERASURE_CURSOR, staff_only=True
    )
    def get(self, request: Request) -> Response:
        project_id = staff_project_for(request)
        query = request.query_params
        limit = parse_limit(request)
        entries = ErasureLog.objects.filter(project_id=project_id).order_by("-id")
        if cursor := query.get("cursor"):
            if not ASCII_DIGITS.fullmatch(cursor):
                raise InvalidParameter("cursor", "cursor is the `next` link's, a whole number")
            entries = entries.filter(id__lt=int(cursor))
        page, next_url = list_page(request, list(entries[: limit + 1]), limit, lambda entry: str(entry.pk))
        return Response({"results": [erasure_body(entry) for entry in page], "next": next_url})

    @admin_operation(
        "Erase a person now: every event and read-model row of all their distinct_ids",
        ERASURE,
        body=ErasureRequest,
        conflicts=(ErrorCode.REPLAY_RUNNING,),
        staff_only=True,
    )
    def post(self, request: Request) -> Response:
        project_id = staff_project_for(request)
        body = decode(request, ErasureRequest)
        if (body.distinct_id is None) == (body.person_id is None):
            raise BodyError(ErrorCode.MISSING_FIELD, "distinct_id", "name exactly one of distinct_id and person_id")
        if body.distinct_id is not None and not body.distinct_id.strip():
            raise BodyError(ErrorCode.EMPTY_VALUE, "distinct_id", "distinct_id is empty")
        if body.distinct_id is not None and len(body.distinct_id) > limits.MAX_ID_LENGTH:
            raise BodyError(ErrorCode.VALUE_TOO_LONG, "distinct_id", f"at most {limits.MAX_ID_LENGTH} characters")
        try:
            entry = person_erase(
                project_id=project_id,
                person_id=body.person_id,
                distinct_ids=(body.distinct_id,) if body.distinct_id is not None else (),
                erased_by=actor_of(request),
                via="api",
            )
        except PersonNotFound as exc:
            raise NotFound(str(exc)) from exc
        except ReplayInProgress as exc:
            raise Conflict(ErrorCode.REPLAY_RUNNING, str(exc)) from exc
        except ErasureRefused as exc:
            raise BodyError(ErrorCode.INVALID_VALUE, None, str(exc)) from exc
        return Response(erasure_body(entry), status=status.HTTP_200_OK)
