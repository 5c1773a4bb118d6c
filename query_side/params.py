"""Query-string parsing for the query API: time ranges, intervals, limits, ids and cursors.
Every bad value raises InvalidParameter naming the parameter; nothing here touches the database.
"""

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import QueryDict

from tenancy.api_errors import InvalidParameter

DEFAULT_RANGE = timedelta(days=7)
MAX_LIMIT = 1_000
MAX_TEXT = 200
# ASCII digits only: str.isdigit() accepts '²', which int() then refuses.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TimeRange:
    after: datetime
    before: datetime


def parse_time(params: QueryDict, name: str) -> datetime | None:
    """An ISO 8601 date or time as an aware UTC datetime; without an offset it is UTC."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if " " in text[11:]:
        # An unescaped '+' in a query string arrives as ' ' ('…T10:00:00 02:00'). Only the last
        # space can be one: '2026-05-01 10:00:00' keeps its space as the date-time separator.
        head, _, tail = text.rpartition(" ")
        text = f"{head}+{tail}" if re.fullmatch(r"\d\d(:?\d\d)?", tail) else text
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(name, f"{name} must be an ISO 8601 date or time, got {raw!r}") from None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:  # '0001-01-01T00:00+01:00' is a year before 1 in UTC
        raise InvalidParameter(name, f"{name} is out of range") from None


def parse_bounds(params: QueryDict) -> tuple[datetime | None, datetime | None]:
    """`after` and `before` as given, either or both absent (lists have no default range)."""
    after, before = parse_time(params, "after"), parse_time(params, "before")
    if after is not None and before is not None and after >= before:
        raise InvalidParameter("after", "after must be earlier than before")
    return after, before


def parse_range(params: QueryDict, *, default: timedelta = DEFAULT_RANGE) -> TimeRange:
    """[after, before); a missing `before` is now, a missing `after` is `default` before it."""
    after, before = parse_bounds(params)
    if before is None:
        # One second ahead, so an event stamped this instant is inside the range.
        before = datetime.now(UTC) + timedelta(seconds=1)
    if after is None:
        try:
            after = before - default
        except OverflowError:
            raise InvalidParameter("before", "before is too early to count back from") from None
    if after >= before:
        raise InvalidParameter("after", "after must be earlier than before")
    return TimeRange(after, before)


def parse_choice[T: str](params: QueryDict, name: str, choices: tuple[T, ...], default: T) -> T:
    return parse_optional_choice(params, name, choices) or default


def parse_optional_choice[T: str](params: QueryDict, name: str, choices: tuple[T, ...]) -> T | None:
    value = params.get(name) or None
    if value is None:
        return None
    for choice in choices:
        if value == choice:
            return choice
    raise InvalidParameter(name, f"{name} must be one of {', '.join(choices)}")


def parse_id(params: QueryDict, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise InvalidParameter(name, f"{name} must be a whole number")
    return int(raw)


def parse_whole(params: QueryDict, name: str, *, default: int, low: int, high: int) -> int:
    """A whole number low..high (ASCII digits only), or `default` when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidParameter(name, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def parse_limit(params: QueryDict, default: int = 100) -> int:
    return parse_whole(params, "limit", default=default, low=1, high=MAX_LIMIT)


def parse_event_types(params: QueryDict, name: str, *, low: int, high: int, default: tuple[str, ...] = ()) -> list[str]:
    """A repeated parameter of event types (trends' series, a funnel's steps), given `low` to
    `high` times, each 1 to MAX_TEXT characters without NUL; not given at all: `default`."""
    values = params.getlist(name) or list(default)
    if not low <= len(values) <= high:
        raise InvalidParameter(name, f"{name} must be given {low} to {high} times (event types)")
    for value in values:
        if not value or len(value) > MAX_TEXT or "\x00" in value:
            raise InvalidParameter(name, f"each {name} is an event type of 1 to {MAX_TEXT} characters, no NUL")
    return values


def parse_text(params: QueryDict, name: str, max_length: int = MAX_TEXT) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > max_length:
        raise InvalidParameter(name, f"{name} is longer than {max_length} characters")
    if value is not None and "\x00" in value:
        # PostgreSQL text cannot hold NUL: let it through and the query fails with a 500.
        raise InvalidParameter(name, f"{name} must not contain NUL characters")
    return value or None


# PostgreSQL's time zone offsets stop short of 16 hours; Python's go up to 24.
_MAX_OFFSET = timedelta(hours=16)


def aware_datetime(text: str) -> datetime:
    """A cursor part: an ISO time this API wrote, always with its offset; read in UTC."""
    value = datetime.fromisoformat(text)
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("a cursor time has an offset")
    if abs(offset) >= _MAX_OFFSET:
        # No cursor of ours has one (they are written in UTC); PostgreSQL would refuse it.
        raise ValueError("a cursor time's offset is within ±15:59")
    return value.astimezone(UTC)  # OverflowError at the ends of the range: decode_cursor's 400


def encode_cursor(*parts: Any) -> str:
    text = "|".join(part.isoformat() if isinstance(part, datetime) else str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(params: QueryDict, *converters: Callable[[str], Any]) -> tuple[Any, ...] | None:
    """The cursor's parts, each through its converter (e.g. aware_datetime, UUID)."""
    raw = params.get("cursor")
    if not raw:
        return None
    # TRICKY: urlsafe_b64decode drops what is not of its alphabet ('!!!' decodes to nothing):
    # only what encode_cursor writes gets that far.
    if not _CURSOR.fullmatch(raw):
        raise InvalidParameter("cursor", "cursor is not one this API gave out")
    try:
        parts = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split("|")
        if len(parts) != len(converters):
            raise ValueError("wrong number of parts")
        return tuple(convert(part) for convert, part in zip(converters, parts, strict=True))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise InvalidParameter("cursor", "cursor is not one this API gave out") from None


# Seconds: a whole or decimal number, as a duration filter takes it; at most ~31 years.
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


def parse_seconds(params: QueryDict, name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _SECONDS.fullmatch(raw):
        raise InvalidParameter(name, f"{name} must be a number of seconds, 0 or more (e.g. 90 or 2.5)")
    return float(raw)


def parse_bool(params: QueryDict, name: str) -> bool | None:
    value = parse_optional_choice(params, name, ("true", "false"))
    return None if value is None else value == "true"


def _json_text_is_storable(value: Any) -> bool:
    """PostgreSQL's jsonb holds no NUL and no lone surrogate, which JSON's escapes can spell."""
    if isinstance(value, str):
        return not any(char == "\x00" or "\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, list):
        return all(_json_text_is_storable(item) for item in value)
    if isinstance(value, dict):
        return all(_json_text_is_storable(key) and _json_text_is_storable(item) for key, item in value.items())
    return True


def parse_properties(params: QueryDict, name: str = "property") -> tuple[dict[str, Any], ...]:
    """Each `key:value` given (the parameter may repeat) as the one-key object `{key: value}`. The
    value is JSON when it parses as JSON (`age:30` is the number 30, `vip:true` the boolean,
    `plan:"30"` the string "30"), else the text as given (`plan:pro` is the string "pro")."""
    found = []
    for raw in params.getlist(name):
        if len(raw) > MAX_TEXT or "\x00" in raw:
            raise InvalidParameter(name, f"{name} must be key:value, at most {MAX_TEXT} characters, no NUL")
        key, colon, text = raw.partition(":")
        if not key or not colon:
            raise InvalidParameter(name, f"{name} must be key:value (e.g. plan:pro), got {raw!r}")
        try:
            value: Any = json.loads(text)
            json.dumps(value, allow_nan=False)  # NaN and 1e999 parse, and jsonb refuses them
        except ValueError:
            value = text
        if not _json_text_is_storable({key: value}):
            raise InvalidParameter(name, f"{name}'s value must not hold NUL or lone surrogates (jsonb cannot)")
        found.append({key: value})
    return tuple(found)


def read_text_part(text: str) -> str:
    """A cursor's text part (a session id may hold '|'), as text_part wrote it."""
    value = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    if "\x00" in value:
        raise ValueError("PostgreSQL text holds no NUL")
    return value


def text_part(value: str) -> str:
    """Text as a cursor part: base64, so that no '|' in it splits the cursor."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
