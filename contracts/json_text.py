"""JSON as PostgreSQL's jsonb stores and spells it, for the projections that compare values they
decode in Python with values SQL computes (verify): numbers exact, one compact spelling."""

import json
from decimal import Decimal
from typing import Any


def decode_json(text: str | None) -> Any:
    """JSON text as PostgreSQL stores it, numbers exact (Decimal, never float: '1.50' stays
    '1.50'); None stays None."""
    if text is None:
        return None
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def compact_json(value: Any) -> str:
    """JSON without whitespace, as the SQL function projection_json_compact spells it (keys in
    jsonb's order, strings escaped as PostgreSQL escapes them, numbers as stored)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        # The same escapes as PostgreSQL's escape_json: \" \\ \b \f \n \r \t, \u00XX for the
        # other control characters, everything else (non-ASCII included) as itself.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format(value, "f")  # numeric's own text: never an exponent
    if isinstance(value, int | float):
        return format(Decimal(str(value)), "f")
    if isinstance(value, list):
        return "[" + ",".join(compact_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{compact_json(k)}:{compact_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a decoded JSON value: {type(value).__name__}")
