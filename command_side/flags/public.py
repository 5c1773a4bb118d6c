"""The SDK-facing flag endpoints, on the command host with the project's public key (as ingestion):

- GET  public/feature-flags/                the project's enabled flags (key, version, variants)
- GET  public/feature-flags/for_user/?distinct_id=…&person_properties={json}
- POST public/feature-flags/for_user/       {"distinct_id", "person_properties"}: every live flag
  for one user with `enabled`, `variant`, `payload`, `reason` and `condition_index`.

They are ingestion-style endpoints (IngestRequest in, IngestResponse out), served by the WSGI
fast path and the RSGI edge like capture, and by Django views in tests. Evaluation reads the
process's FlagCache only: no PostgreSQL, and Redis at most once every half second.
"""

from typing import Any

import msgspec

from command_side import endpoints
from command_side.endpoints import IngestRequest, IngestResponse, Rejection
from command_side.flags.cache import flag_cache
from contracts.errors import ErrorCode
from contracts.events import error_from_validation

MAX_DISTINCT_ID = 200


class ForUser(msgspec.Struct, forbid_unknown_fields=True):
    distinct_id: str
    person_properties: dict[str, Any] = {}
    api_key: str | None = None


_decode_for_user = msgspec.json.Decoder(ForUser).decode
_decode_properties = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


def _project(request: IngestRequest, body_key: str | None, query: dict[str, str]) -> int:
    return endpoints.authenticate(endpoints.header_key(request) or body_key or query.get("api_key"))


def check_distinct_id(distinct_id: str) -> str:
    if not distinct_id.strip():
        raise Rejection(400, ErrorCode.MISSING_FIELD, "distinct_id is required", "distinct_id")
    if len(distinct_id) > MAX_DISTINCT_ID:
        raise Rejection(
            400, ErrorCode.VALUE_TOO_LONG, f"distinct_id is at most {MAX_DISTINCT_ID} characters", "distinct_id"
        )
    return distinct_id


@endpoints.handle
def active_flags(request: IngestRequest) -> IngestResponse:
    query = endpoints.query_fields(request.query)
    project_id = _project(request, None, query)
    return IngestResponse(200, flag_cache().project(project_id).active)


@endpoints.handle
def for_user(request: IngestRequest) -> IngestResponse:
    query = endpoints.query_fields(request.query)
    if request.method == "POST":
        body = endpoints.read_body(request)
        try:
            wanted = _decode_for_user(body)
        except msgspec.DecodeError as exc:
            error = error_from_validation(exc)
            raise Rejection(400, error.code, error.message, error.field) from exc
        project_id = _project(request, wanted.api_key, query)
        distinct_id, properties = wanted.distinct_id, wanted.person_properties
    else:
        project_id = _project(request, None, query)  # a bad key is refused before the parameters
        distinct_id = query.get("distinct_id", "")
        try:
            properties = _decode_properties(query.get("person_properties") or "{}")
        except msgspec.DecodeError as exc:
            raise Rejection(
                400, ErrorCode.INVALID_PARAMETER, f"person_properties must be a JSON object: {exc}", "person_properties"
            ) from exc
    check_distinct_id(distinct_id)
    project = flag_cache().project(project_id)
    results = {flag.key: flag.evaluate(distinct_id, properties) for flag in project.compiled}
    return IngestResponse(200, _encode({"distinct_id": distinct_id, "flags": results}))
