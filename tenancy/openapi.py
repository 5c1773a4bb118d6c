"""OpenAPI pieces both hosts' DRF views share: the error body every answer of both APIs has, and
the personal API key's security scheme. Declarations only: nothing here runs on a request.
"""

import re
from typing import Any

import msgspec
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from contracts.errors import ErrorCode

Schema = dict[str, Any]

# JSON Schema shorthands (OpenAPI 3.1's schemas are JSON Schema 2020-12), for both hosts' answers.
TIME: Schema = {"type": "string", "format": "date-time"}
TEXT: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
UUID_TEXT: Schema = {"type": "string", "format": "uuid"}
JSON_OBJECT: Schema = {"type": "object", "additionalProperties": True}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(**properties: Schema) -> Schema:
    """An object with these properties, all required (and maybe more: answers may grow)."""
    return {"type": "object", "properties": properties, "required": list(properties)}


def page_of(item: Schema) -> Schema:
    """A cursor-paginated list: `next` is the following page's URL, null on the last."""
    return obj(results=array(item), next=nullable({"type": "string", "format": "uri"}))


PERSONAL_KEY = "personalApiKey"
SESSION = "cookieAuth"
"""drf-spectacular's own name for DRF's SessionAuthentication."""


PROJECT_ID = OpenApiParameter(
    "project_id",
    {"type": "integer", "minimum": 0},
    OpenApiParameter.QUERY,
    description="The project a staff session reads or administers (required with a session; tenancy.access)."
    " A personal API key's project is its own, whatever this says.",
)

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    description="Seconds to wait before retrying (TIDELOG_RETRY_AFTER_SECONDS).",
    response=[503],
)
"""A header of every 503 (tenancy.api_errors.retry_after): each operation lists it."""


def error_schema(*codes: ErrorCode) -> dict[str, Any]:
    """contracts.errors.error_body's shape, its `code` one of `codes`."""
    return {
        "type": "object",
        "required": ["code", "field", "message"],
        "properties": {
            "code": {"type": "string", "enum": [str(code) for code in codes]},
            "field": {"type": ["string", "null"], "description": "the field or parameter at fault (dotted path)"},
            "message": {"type": "string", "description": "for people; never parse it"},
        },
    }


def error(description: str, *codes: ErrorCode) -> OpenApiResponse:
    return OpenApiResponse(error_schema(*codes), description=description)


# The answers every DRF view of both hosts may give whatever its parameters: from the
# authentication (tenancy.auth, tenancy.access) and from tenancy.api_errors' handler.
AUTH_ERRORS: dict[int, OpenApiResponse] = {
    401: error(
        "no credentials, an unknown key, or a key of the other kind (a project's public `tlp_…` key)",
        ErrorCode.NOT_AUTHENTICATED,
        ErrorCode.WRONG_KEY_KIND,
    ),
    403: error("a logged-in user who is not staff", ErrorCode.PERMISSION_DENIED),
    503: error("PostgreSQL is unreachable: retry after `Retry-After` seconds", ErrorCode.DATABASE_UNAVAILABLE),
}


def operation_id(path: str, method: str) -> str:
    """An operation's id from its path under SCHEMA_PATH_PREFIX and its method, one rule for every
    operation: `admin/people/{person_id}/` GET is `admin_people_person_id_get`."""
    words = path.removeprefix(spectacular_settings.SCHEMA_PATH_PREFIX).strip("/").replace("-", "_")
    return "_".join([*re.sub(r"[{}]", "", words).split("/"), method.lower()])


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with operation_id's ids (its own give two GETs of /people/ and
    /people/{id}/ the same name and number them)."""

    def get_operation_id(self) -> str:
        return operation_id(self.path, self.method)


class PersonalAPIKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """tenancy.auth.PersonalAPIKeyAuthentication as the `personalApiKey` bearer scheme.
    (drf-spectacular finds it by target class once this module is imported: core/openapi.py.)"""

    target_class = "tenancy.auth.PersonalAPIKeyAuthentication"
    name = PERSONAL_KEY

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tls_…",
            "description": "A personal API key (`tls_…`, secret, read-only on the query host): "
            "`Authorization: Bearer tls_…`. It reads and administers its own project only.",
        }


# --- msgspec structs as schema components -----------------------------------------------------------

REF = "#/components/schemas/{name}"
_structs: dict[str, type] = {}


def struct_ref(struct: type) -> dict[str, Any]:
    """A `$ref` to the JSON Schema msgspec derives from `struct`, the very type the endpoint
    decodes with: the documented body cannot drift from the validator. The component is built
    by struct_components at generation time."""
    known = _structs.setdefault(struct.__name__, struct)
    if known is not struct:
        raise ValueError(f"two structs named {struct.__name__}: {known} and {struct}")
    return {"$ref": REF.format(name=struct.__name__)}


def struct_components() -> dict[str, dict[str, Any]]:
    """The components of every struct referred to so far, and of the structs they hold."""
    _, components = msgspec.json.schema_components(list(_structs.values()), ref_template=REF)
    return components
