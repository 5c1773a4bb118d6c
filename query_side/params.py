"""Query-string parsing for the query API: time ranges, intervals, limits and cursors.
Every bad value raises InvalidParameter naming the parameter; nothing here touches the database.
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import QueryDict

from query_side.errors import InvalidParameter

DEFAULT_RANGE = timedelta(days=7)
MAX_LIMIT = 1_000


@dataclass(frozen=True)
class TimeRange:
    after: datetime
    before: datetime


def parse_time(params: QueryDict, name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))  # '+' arrives as ' ' when unescaped
    except ValueError:
        raise InvalidParameter(name, f"{name} must be an ISO 8601 date or time, got {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_range(params: QueryDict, *, default: timedelta | None = DEFAULT_RANGE) -> TimeRange | None:
    """[after, before); default the last 7 days up to now. None when no default and none given."""
    after = parse_time(params, "after")
    before = parse_time(params, "before")
    if default is None and after is None and before is None:
        return None
    before = before or datetime.now(UTC) + timedelta(seconds=1)
    after = after or before - (default or DEFAULT_RANGE)
    if after >= before:
        raise InvalidParameter("after", "after must be earlier than before")
    return TimeRange(after, before)


def parse_choice(params: QueryDict, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = params.get(name) or default
    if value is not None and value not in choices:
        raise InvalidParameter(name, f"{name} must be one of {', '.join(choices)}")
    return value


def parse_limit(params: QueryDict, default: int = 100) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidParameter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def parse_text(params: QueryDict, name: str, max_length: int = 200) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > max_length:
        raise InvalidParameter(name, f"{name} is longer than {max_length} characters")
    return value or None


def encode_cursor(*parts: Any) -> str:
    text = "|".join(part.isoformat() if isinstance(part, datetime) else str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(params: QueryDict, *converters: Callable[[str], Any]) -> tuple[Any, ...] | None:
    """The cursor's parts, each through its converter (e.g. datetime.fromisoformat, UUID)."""
    raw = params.get("cursor")
    if not raw:
        return None
    try:
        parts = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split("|")
        if len(parts) != len(converters):
            raise ValueError("wrong number of parts")
        return tuple(convert(part) for convert, part in zip(converters, parts, strict=True))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameter("cursor", "cursor is not one this API gave out") from None
