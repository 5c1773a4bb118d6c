"""PostHog's flag protocol (docs/posthog-compat.md), answered from Tidelog's own evaluator and
per-process cache (command_side/flags/cache.py): an answer here equals `public/feature-flags/
for_user/` for the same user and properties, in PostHog's shapes.

- `/flags/?v=2` (and `v=4`, posthog-python's since 7.9x): a `flags` map of `{key, enabled, variant, reason, metadata}`;
  `/flags/` without `v`, and `/decide/?v=3`: `featureFlags` + `featureFlagPayloads`;
  `/decide/?v=1` a list of the keys that are on, `?v=2` a map of them, `?v=4` as `/flags/?v=2`.
- `/flags/definitions` and `/api/feature_flag/local_evaluation/` (server SDKs' local
  evaluation, a personal key): the definitions as PostHog's `filters`, so posthog-python and
  posthog-node evaluate them as Tidelog does. What PostHog's format cannot say (per-user
  overrides) is sent with `ensure_experience_continuity`, which makes the SDKs ask the server.
- `/array/{token}/config` (and `config.js`): the remote config posthog-js loads first.

Every live flag is answered, a disabled one as off (as for_user, and as PostHog's SDKs evaluate
an inactive flag locally: `false`, where PostHog's own server leaves it out). Person properties
are the request's, as for_user's: none are read from the people read models.
"""

import hashlib
import time
import uuid
import zlib
from typing import Any, Final

import msgspec

from command_side import endpoints
from command_side.endpoints import IngestRequest, IngestResponse, Rejection
from command_side.flags.cache import ProjectFlags, flag_cache
from command_side.flags.public import check_distinct_id
from command_side.posthog.capture import text_or_none, unwrap, with_cors
from contracts.errors import ErrorCode
from flags.definition import FlagDefinition
from flags.evaluate import Evaluation, Reason
from tenancy.models import PERSONAL_KEY_PREFIX
from tenancy.selectors import personal_api_key_find

_encode = msgspec.json.Encoder().encode


class FlagsRequest(msgspec.Struct, frozen=True):
    distinct_id: Any = None
    dollar_distinct_id: Any = msgspec.field(default=None, name="$distinct_id")
    person_properties: Any = None
    dollar_properties: Any = msgspec.field(default=None, name="$properties")
    flag_keys: Any = None
    flag_keys_to_evaluate: Any = None
    token: Any = None
    dollar_token: Any = msgspec.field(default=None, name="$token")
    api_key: Any = None


_decode_request = msgspec.json.Decoder(FlagsRequest)

_REASONS: Final = {
    Reason.CONDITION_MATCH: "condition_match",
    Reason.OVERRIDE: "override",
    Reason.OUT_OF_ROLLOUT: "out_of_rollout_bound",
    Reason.NO_CONDITION_MATCH: "no_condition_match",
    Reason.DISABLED: "disabled",
}


def flag_id(project_id: int, key: str) -> int:
    """A flag's number in PostHog's answers (`metadata.id`, `$feature_flag_id`): stable for the
    key, as Tidelog flags are named by key alone."""
    return zlib.crc32(f"{project_id}:{key}".encode()) & 0x7FFFFFFF


def payloadtext_or_none(payload: Any) -> str | None:
    """PostHog sends payloads JSON-encoded, as strings (every SDK decodes them)."""
    return None if payload is None else _encode(payload).decode()


def _description(evaluation: Evaluation) -> str:
    if evaluation.reason == Reason.CONDITION_MATCH:
        return f"Matched condition set {(evaluation.condition_index or 0) + 1}"
    if evaluation.reason == Reason.OVERRIDE:
        return "Matched an override for this distinct_id"
    if evaluation.reason == Reason.OUT_OF_ROLLOUT:
        return "Out of rollout bound"
    if evaluation.reason == Reason.DISABLED:
        return "Flag is disabled"
    return "No matching condition set"


def _request(request: IngestRequest, query: dict[str, str]) -> FlagsRequest:
    if request.method == "GET":
        return FlagsRequest(distinct_id=query.get("distinct_id"), token=query.get("token"))
    body = unwrap(endpoints.read_body(request), content_type=request.content_type, query=query)
    try:
        return _decode_request.decode(body or b"{}")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise Rejection(400, ErrorCode.INVALID_JSON, f"the body is not a JSON object: {exc}") from exc


def _evaluate(request: IngestRequest) -> tuple[ProjectFlags, dict[str, tuple[FlagDefinition, Evaluation]]]:
    """The request's project and every active flag's evaluation for its user, by key."""
    query = endpoints.query_fields(request.query)
    wanted = _request(request, query)
    body_keys = [text_or_none(wanted.token), text_or_none(wanted.dollar_token), text_or_none(wanted.api_key)]
    key = endpoints.header_key(request) or next(
        (k for k in (*body_keys, query.get("token"), query.get("api_key")) if k), None
    )
    project_id = endpoints.authenticate(key)
    distinct_id = next((v for v in (wanted.distinct_id, wanted.dollar_distinct_id) if v is not None), None)
    if isinstance(distinct_id, int | float) and not isinstance(distinct_id, bool):
        distinct_id = str(distinct_id)
    if not isinstance(distinct_id, str):
        raise Rejection(400, ErrorCode.MISSING_FIELD, "distinct_id is required", "distinct_id")
    check_distinct_id(distinct_id)
    properties: Any = next((v for v in (wanted.person_properties, wanted.dollar_properties) if v is not None), {})
    if not isinstance(properties, dict):
        raise Rejection(400, ErrorCode.INVALID_TYPE, "person_properties must be an object", "person_properties")
    only = wanted.flag_keys if wanted.flag_keys is not None else wanted.flag_keys_to_evaluate
    keys = {k for k in only if isinstance(k, str)} if isinstance(only, list) else None
    project = flag_cache().project(project_id)
    answers = {}
    for definition, compiled in zip(project.definitions, project.compiled, strict=True):
        if keys is not None and definition.key not in keys:
            continue
        answers[definition.key] = (definition, compiled.evaluate(distinct_id, properties))
    return project, answers


def _v2(project: ProjectFlags, answers: dict[str, tuple[FlagDefinition, Evaluation]]) -> dict[str, Any]:
    flags = {}
    for key, (definition, evaluation) in answers.items():
        index = evaluation.condition_index
        if evaluation.reason == Reason.CONDITION_MATCH and index is None:
            index = 0  # a flag without conditions: its rollout is PostHog's one condition set
        flags[key] = {
            "key": key,
            "enabled": evaluation.enabled,
            "variant": evaluation.variant,
            "reason": {
                "code": _REASONS.get(Reason(evaluation.reason), evaluation.reason),
                "condition_index": index,
                "description": _description(evaluation),
            },
            "metadata": {
                "id": flag_id(project.project_id, key),
                "version": definition.version,
                "description": None,
                "payload": payloadtext_or_none(evaluation.payload) if evaluation.enabled else None,
            },
        }
    return {
        "flags": flags,
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
        "evaluatedAt": int(time.time() * 1000),
    }


def _legacy(answers: dict[str, tuple[FlagDefinition, Evaluation]]) -> dict[str, Any]:
    values: dict[str, str | bool] = {}
    payloads: dict[str, str] = {}
    for key, (_, evaluation) in answers.items():
        values[key] = evaluation.variant if evaluation.variant is not None else evaluation.enabled
        if evaluation.enabled and evaluation.payload is not None:
            payloads[key] = payloadtext_or_none(evaluation.payload) or "null"
    return {
        "featureFlags": values,
        "featureFlagPayloads": payloads,
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
    }


def _with_config(answer: dict[str, Any], query: dict[str, str], token: str) -> dict[str, Any]:
    """`?config=true` (React Native) asks for the remote config in the same answer."""
    return {**remote_config_body(token), **answer} if query.get("config") == "true" else answer


@with_cors
def flags(request: IngestRequest) -> IngestResponse:
    """`/flags/`: `?v=2` and later (posthog-python 7.9x sends 4) PostHog's current shape, else
    the legacy one."""
    query = endpoints.query_fields(request.query)
    project, answers = _evaluate(request)
    version = query.get("v", "")
    answer = _v2(project, answers) if version.isdigit() and int(version) >= 2 else _legacy(answers)
    return endpoints.respond(200, _with_config(answer, query, query.get("token", "")))


@with_cors
def decide(request: IngestRequest) -> IngestResponse:
    """`/decide/`, the endpoint SDKs called before `/flags/` (by version: 1 to 4)."""
    query = endpoints.query_fields(request.query)
    project, answers = _evaluate(request)
    version = query.get("v", "1")
    answer: dict[str, Any]
    if version == "1":
        answer = {"featureFlags": [key for key, (_, e) in answers.items() if e.enabled]}
    elif version == "2":
        answer = {"featureFlags": {key: e.variant or True for key, (_, e) in answers.items() if e.enabled}}
    elif version == "3":
        answer = _legacy(answers)
    else:
        answer = _v2(project, answers)
    return endpoints.respond(200, {**remote_config_body(query.get("token", "")), **answer})


# --- Local evaluation ---------------------------------------------------------------------------


def posthog_definition(project_id: int, definition: FlagDefinition) -> dict[str, Any]:
    """One flag as PostHog's local-evaluation `flags` entry. The rollout and variant hashes are
    PostHog's own (flags/hashing.py), so an SDK evaluating this gets Tidelog's answer."""
    groups = [
        {
            "properties": [
                {"key": f.key, "operator": f.operator, "value": f.value, "type": "person"} for f in condition.properties
            ],
            "rollout_percentage": (
                definition.rollout_percentage if condition.rollout_percentage is None else condition.rollout_percentage
            ),
            "variant": condition.variant,
        }
        for condition in definition.conditions
    ] or [{"properties": [], "rollout_percentage": definition.rollout_percentage, "variant": None}]
    if definition.variants:
        payloads = {v.key: payloadtext_or_none(v.payload) for v in definition.variants if v.payload is not None}
        multivariate: dict[str, Any] | None = {
            "variants": [
                {"key": v.key, "name": v.name or None, "rollout_percentage": v.rollout_percentage}
                for v in definition.variants
            ]
        }
    else:
        payloads = {"true": payloadtext_or_none(definition.payload)} if definition.payload is not None else {}
        multivariate = None
    return {
        "id": flag_id(project_id, definition.key),
        "team_id": project_id,
        "name": definition.key,
        "key": definition.key,
        "active": definition.enabled,
        "deleted": False,
        "version": definition.version,
        # Per-user overrides have no place in PostHog's filters: the SDKs then ask /flags/.
        "ensure_experience_continuity": bool(definition.overrides),
        "filters": {
            "groups": groups,
            "multivariate": multivariate,
            "payloads": payloads,
            "aggregation_group_type_index": None,
        },
    }


def definitions_body(project: ProjectFlags) -> bytes:
    return _encode(
        {
            "flags": [posthog_definition(project.project_id, d) for d in project.definitions],
            "group_type_mapping": {},
            "cohorts": {},
        }
    )


def _personal_key_project(request: IngestRequest) -> int:
    """Local evaluation reads every definition: a personal key (`Authorization: Bearer tls_…`),
    of the project the `token` names when there is one."""
    scheme, _, secret = request.authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Rejection(
            401, ErrorCode.MISSING_API_KEY, f"send a personal API key as 'Authorization: Bearer {PERSONAL_KEY_PREFIX}…'"
        )
    key = personal_api_key_find(secret)
    if key is None:
        raise Rejection(401, ErrorCode.INVALID_API_KEY, "unknown or revoked personal API key")
    token = endpoints.query_fields(request.query).get("token")
    if token and endpoints.authenticate(token) != key.project_id:
        raise Rejection(403, ErrorCode.PERMISSION_DENIED, "the personal API key is not of the token's project", "token")
    return key.project_id


@with_cors
def definitions(request: IngestRequest) -> IngestResponse:
    """`/flags/definitions`, `/api/feature_flag/local_evaluation/`: every live definition, with
    an ETag (an SDK polling every 30 s gets a bodiless 304 while nothing changed)."""
    project = flag_cache().project(_personal_key_project(request))
    body = definitions_body(project)
    etag = f'W/"{hashlib.sha1(body, usedforsecurity=False).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "private, must-revalidate"}
    sent = {tag.strip().removeprefix("W/").strip('"') for tag in request.if_none_match.split(",")}
    if etag.removeprefix("W/").strip('"') in sent:
        return IngestResponse(304, b"", headers)
    return IngestResponse(200, body, headers)


# --- Remote config (posthog-js) -----------------------------------------------------------------


def remote_config_body(token: str) -> dict[str, Any]:
    """What posthog-js reads at start: gzip is taken, nothing but events and flags is on (no
    session recording, surveys or heatmaps: Tidelog does not store them)."""
    return {
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": True,
        "autocapture_opt_out": False,
        "capturePerformance": False,
        "autocaptureExceptions": False,
        "sessionRecording": False,
        "heatmaps": False,
        "surveys": False,
        "productTours": False,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
        "analytics": {"endpoint": "/e/"},
    }


@with_cors
def remote_config(request: IngestRequest, token: str) -> IngestResponse:
    endpoints.authenticate(token)
    return endpoints.respond(200, remote_config_body(token))


@with_cors
def remote_config_js(request: IngestRequest, token: str) -> IngestResponse:
    endpoints.authenticate(token)
    config = _encode({"config": remote_config_body(token), "siteApps": []}).decode()
    script = (
        "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"window._POSTHOG_REMOTE_CONFIG[{_encode(token).decode()}]={config};}})();"
    )
    return IngestResponse(200, script.encode(), content_type="application/javascript")
