"""Property filters: PostHog's operators with PostHog's semantics (posthog-python `feature_flags.py`
`match_property`, posthog-node local evaluation). A definition is checked once (`check_filter`)
and compiled once (`compile_filter`); matching never raises on user-supplied properties.

Semantics, where PostHog's SDKs leave a choice:
- A property absent from the user's properties matches nothing except `is_not_set`. A property
  present with a JSON null matches `is_set` and `is_not` only (posthog-node's null guard).
- Values are compared as text the way JSON spells them (true, false, null, 1 for 1.0), so the
  answer does not depend on the language the SDK was written in; `exact`, `is_not`, `icontains`
  and the prefix/suffix operators ignore case (casefold), `regex` does not.
- `gt`/`gte`/`lt`/`lte` compare numbers when both sides parse as finite numbers (numeric strings
  included, booleans not), else the two texts.
- Dates: ISO 8601 dates and datetimes (naive ones are UTC) or PostHog's relative values
  (`-7d`, `-24h`, `-2w`, `-1m`, `-1y`: that long before now, months and years calendar-aware).
  A person property that is not an ISO string matches neither date operator.
- Semver: PostHog's `parse_semver` ((major, minor, patch), a leading v and any pre-release or
  build suffix dropped, missing parts 0, leading zeros refused). A property that does not parse
  matches no semver operator, `semver_neq` included.
- Regex safety: person properties are user-controlled, so a regex operator never runs on a
  subject longer than MAX_REGEX_SUBJECT characters (such a subject matches neither `regex` nor
  `not_regex`). This bounds the cost of ordinary patterns; it does not make a pattern with
  catastrophic backtracking safe, so `check_filter` also refuses the usual shape of those, a
  repeated group starting and ending with repeated items (`(a+)+`, `(x+y?)*`): a heuristic
  (see `_NESTED_QUANTIFIER`), not a proof.
"""

import calendar
import functools
import math
import operator
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import msgspec

from flags.definition import PropertyFilter

MAX_REGEX_SUBJECT: Final = 1_000
"""Longest person property (in characters) a regex operator runs on."""

MAX_REGEX_PATTERN: Final = 1_000
"""Longest regular expression a filter may hold."""

MAX_PARSED_TEXT: Final = 200
"""Longest text parsed as a number, a date or a version: longer is none of them."""

EQUALITY_OPERATORS: Final = frozenset({"exact", "is_not"})
PRESENCE_OPERATORS: Final = frozenset({"is_set", "is_not_set"})
TEXT_OPERATORS: Final = frozenset(
    {"icontains", "not_icontains", "starts_with", "not_starts_with", "ends_with", "not_ends_with"}
)
REGEX_OPERATORS: Final = frozenset({"regex", "not_regex"})
ORDER_OPERATORS: Final = frozenset({"gt", "gte", "lt", "lte"})
DATE_OPERATORS: Final = frozenset({"is_date_before", "is_date_after"})
SEMVER_COMPARISON_OPERATORS: Final = frozenset(
    {"semver_eq", "semver_neq", "semver_gt", "semver_gte", "semver_lt", "semver_lte"}
)
SEMVER_RANGE_OPERATORS: Final = frozenset({"semver_tilde", "semver_caret", "semver_wildcard"})

OPERATORS: Final[frozenset[str]] = (
    EQUALITY_OPERATORS
    | PRESENCE_OPERATORS
    | TEXT_OPERATORS
    | REGEX_OPERATORS
    | ORDER_OPERATORS
    | DATE_OPERATORS
    | SEMVER_COMPARISON_OPERATORS
    | SEMVER_RANGE_OPERATORS
)
"""PostHog's person-property operators (its `PROPERTY_OPERATORS`), by their PostHog names."""

Matcher = Callable[[Mapping[str, Any]], bool]
Version = tuple[int, int, int]

_ABSENT: Final = object()
_SCALARS: Final = (str, int, float)  # bool is an int: refused separately where it must be
_RELATIVE_DATE: Final = re.compile(r"-?([0-9]+)([a-z])")
_RELATIVE_UNITS: Final = frozenset("hdwmy")
_DIGITS: Final = re.compile(r"[0-9]+")
_WILDCARD: Final = re.compile(r"([0-9]+)(?:\.([0-9]+))?(?:\.?\*)?")
# A repeated group that starts with a repeated atom and ends with a repeated or optional one:
# `(a+)+`, `(\w+\s?)*`, `(x+x+)+`, `(?:.*)*`. Runs of the same characters split across its
# iterations in exponentially many ways. A required literal at either end (`(\.[a-z]+)*`,
# `([a-z0-9-]+\.)+`) pins each split, so those common patterns pass. A heuristic, not a proof:
# nested groups (`((a+))+`) and overlapping alternatives (`(a|aa)+`) get through.
_ATOM: Final = r"(?:\\.|\[(?:[^\]\\]|\\.)*\]|[^()\\|])"
_NESTED_QUANTIFIER: Final = re.compile(
    r"\((?:\?:|\?P<\w+>)?" + _ATOM + r"[+*{](?:(?:[^()\\]|\\.)*(?<!\\)[+*?}])?\)[+*{]"
)


# --- text, numbers, dates and versions, as PostHog reads them ---------------------------------


def as_text(value: Any) -> str:
    """A value as JSON spells it (true, null, 1 for 1.0); a string is itself."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # over Python's 4,300-digit limit: no JSON decoder makes one, but never raise
            return hex(value)
    if isinstance(value, float):
        # TRICKY: JSON (and posthog-js, String(1.0) == "1") has no integral floats.
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        return str(value)


def as_number(value: Any) -> float | None:
    """A finite number from an int, a float or a numeric string; None otherwise (booleans too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str) and len(value) <= MAX_PARSED_TEXT and "_" not in value:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string (naive and date-only ones are UTC), a datetime
    or a date; None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or len(value) > MAX_PARSED_TEXT:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _months_before(moment: datetime, months: int) -> datetime | None:
    # Clamped to the target month's last day, as posthog-python (dateutil's relativedelta).
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        return None
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def parse_relative_date(value: str) -> tuple[int, str] | None:
    """(number, unit) from PostHog's relative date (`-7d`); None if it is not one. Like PostHog,
    10,000 units or more is refused."""
    match = _RELATIVE_DATE.fullmatch(value)
    if match is None or match.group(2) not in _RELATIVE_UNITS:
        return None
    number = int(match.group(1))
    return (number, match.group(2)) if number < 10_000 else None


def relative_date(number: int, unit: str, now: datetime) -> datetime | None:
    """`number` units before `now`."""
    if unit == "h":
        return now - timedelta(hours=number)
    if unit == "d":
        return now - timedelta(days=number)
    if unit == "w":
        return now - timedelta(weeks=number)
    return _months_before(now, number * 12 if unit == "y" else number)


def _version_part(part: str) -> int:
    # ASCII digits only: str.isdigit() would let '²' through to int().
    if not _DIGITS.fullmatch(part) or (len(part) > 1 and part[0] == "0"):
        raise ValueError(f"{part!r} is not a version number (digits, no leading zero)")
    return int(part)


def parse_semver(value: Any) -> Version:
    """(major, minor, patch) as PostHog's `parse_semver`; ValueError if it does not parse."""
    if not isinstance(value, str) or len(value) > MAX_PARSED_TEXT:
        raise ValueError("a version is a string")
    text = value.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    parts = text.split("-", 1)[0].split("+", 1)[0].split(".")
    if not parts[0]:
        raise ValueError(f"{value!r} is not a version")
    minor = _version_part(parts[1]) if len(parts) > 1 and parts[1] else 0
    patch = _version_part(parts[2]) if len(parts) > 2 and parts[2] else 0
    return (_version_part(parts[0]), minor, patch)


def semver_range(operator: str, value: Any) -> tuple[Version, Version]:
    """[lower, upper) of a tilde, caret or wildcard value; ValueError if it does not parse."""
    if operator == "semver_wildcard":
        # "1", "1.*", "1.2", "1.2.*": the forms posthog-python and posthog-node read alike
        # (they disagree on "1.2.3", so it is refused).
        text = value.strip() if isinstance(value, str) else ""
        if text[:1] in ("v", "V"):
            text = text[1:]
        match = _WILDCARD.fullmatch(text)
        if match is None:
            raise ValueError(f"{value!r} is not a wildcard version (1.*, 1.2.*)")
        major = _version_part(match.group(1))
        if match.group(2) is None:
            return (major, 0, 0), (major + 1, 0, 0)
        minor = _version_part(match.group(2))
        return (major, minor, 0), (major, minor + 1, 0)
    major, minor, patch = lower = parse_semver(value)
    if operator == "semver_tilde":
        return lower, (major, minor + 1, 0)
    if major > 0:
        return lower, (major + 1, 0, 0)
    if minor > 0:
        return lower, (0, minor + 1, 0)
    return lower, (0, 0, patch + 1)


# --- checking a definition ---------------------------------------------------------------------


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS) and not (isinstance(value, float) and not math.isfinite(value))


def check_filter(f: PropertyFilter) -> tuple[str, str] | None:
    """(field inside the filter, message) for a filter that cannot be evaluated; None if it can."""
    if not f.key:
        return "key", "a property filter names a property"
    operator, value = f.operator, f.value
    if operator not in OPERATORS:
        return "operator", f"unknown operator {operator!r}; one of {', '.join(sorted(OPERATORS))}"
    if operator in EQUALITY_OPERATORS:
        if isinstance(value, list):
            if not value:
                return "value", f"{operator} needs at least one value"
            if not all(_is_scalar(v) for v in value):
                return "value", f"{operator} compares with strings, numbers or booleans"
        elif not _is_scalar(value):
            return "value", f"{operator} compares with a string, a number, a boolean or a list of them"
    elif operator in TEXT_OPERATORS:
        if isinstance(value, bool) or not _is_scalar(value):
            return "value", f"{operator} needs a string"
    elif operator in REGEX_OPERATORS:
        if not isinstance(value, str):
            return "value", f"{operator} needs a regular expression (a string)"
        if len(value) > MAX_REGEX_PATTERN:
            return "value", f"a regular expression is at most {MAX_REGEX_PATTERN} characters"
        try:
            re.compile(value)
        except re.error as error:
            return "value", f"not a regular expression: {error.msg} at position {error.pos}"
        except (OverflowError, RecursionError):  # a{99999999999}, thousands of nested groups
            return "value", "not a regular expression Python can compile (a repeat or nesting too large)"
        if _NESTED_QUANTIFIER.search(value):
            return "value", (
                "a repeated group starting and ending with repeated items ((a+)+, (x+y?)*) can take "
                "exponential time on a long property; rewrite it"
            )
    elif operator in ORDER_OPERATORS:
        if isinstance(value, bool) or not _is_scalar(value):
            return "value", f"{operator} compares with a number or a string"
    elif operator in DATE_OPERATORS:
        if not isinstance(value, str) or (parse_relative_date(value) is None and parse_datetime(value) is None):
            return "value", f"{operator} needs an ISO 8601 date or datetime, or a relative date like -7d"
    elif operator in SEMVER_COMPARISON_OPERATORS:
        try:
            parse_semver(value)
        except ValueError:
            return "value", f"{operator} needs a version like 1.2.3"
    elif operator in SEMVER_RANGE_OPERATORS:
        try:
            semver_range(operator, value)
        except ValueError:
            example = "1.2.*" if operator == "semver_wildcard" else "1.2.3"
            return "value", f"{operator} needs a version like {example}"
    return None


# --- compiling and matching -------------------------------------------------------------------


def _never(properties: Mapping[str, Any]) -> bool:
    return False


_TEXT_TESTS: Final[dict[str, Callable[[str, str], bool]]] = {
    "icontains": str.__contains__,
    "starts_with": str.startswith,
    "ends_with": str.endswith,
}


def compile_filter(f: PropertyFilter) -> Matcher:
    """A function of the user's properties answering whether this filter matches them. All the
    parsing of the definition is done here, once. A filter `check_filter` refuses never matches."""
    if check_filter(f) is not None:
        return _never
    key, operator, value = f.key, f.operator, f.value

    if operator == "is_set":
        return lambda properties: key in properties
    if operator == "is_not_set":
        return lambda properties: key not in properties

    if operator in EQUALITY_OPERATORS:
        wanted = frozenset(as_text(v).casefold() for v in (value if isinstance(value, list) else [value]))
        is_exact = operator == "exact"

        def match_equality(properties: Mapping[str, Any]) -> bool:
            actual = properties.get(key, _ABSENT)
            if actual is _ABSENT:
                return False
            if actual is None and is_exact:  # posthog-node: null fails all but is_not and is_set
                return False
            return (as_text(actual).casefold() in wanted) is is_exact

        return match_equality

    if operator in TEXT_OPERATORS:
        needle = as_text(value).casefold()
        negated = operator.startswith("not_")
        test = _TEXT_TESTS[operator.removeprefix("not_")]

        def match_text(properties: Mapping[str, Any]) -> bool:
            actual = properties.get(key)
            if actual is None:
                return False
            return test(as_text(actual).casefold(), needle) is not negated

        return match_text

    if operator in REGEX_OPERATORS:
        pattern = re.compile(value)
        wants_match = operator == "regex"

        def match_regex(properties: Mapping[str, Any]) -> bool:
            actual = properties.get(key)
            if actual is None:
                return False
            subject = as_text(actual)
            if len(subject) > MAX_REGEX_SUBJECT:
                return False
            return (pattern.search(subject) is not None) is wants_match

        return match_regex

    if operator in ORDER_OPERATORS:
        return _compile_order(key, operator, value)
    if operator in DATE_OPERATORS:
        return _compile_date(key, operator, value)
    return _compile_semver(key, operator, value)


# The comparisons of gt … lte and of semver_eq … semver_lte (without their prefix).
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
}  # fmt: skip


def _compile_order(key: str, operator: str, value: Any) -> Matcher:
    bound_number = as_number(value)
    bound_text = as_text(value)
    compare = _COMPARISONS[operator]

    def match_order(properties: Mapping[str, Any]) -> bool:
        actual = properties.get(key)
        if actual is None:
            return False
        if bound_number is not None:
            number = as_number(actual)
            if number is not None:
                return compare(number, bound_number)
        return compare(as_text(actual), bound_text)

    return match_order


def _compile_date(key: str, operator: str, value: str) -> Matcher:
    relative = parse_relative_date(value)
    fixed = parse_datetime(value)
    is_before = operator == "is_date_before"
    # A relative bound moves with the clock; recomputed at most once a second (a second's
    # precision is plenty for "signed up in the last 7 days", and it is off the hot path).
    # TRICKY: threads may race to recompute it; each writes a right value in one slice
    # assignment, so a reader sees an old pair or a new one, never half of each.
    moving: list[Any] = [-1.0, None]  # [when computed (time.time()), bound]

    def current_bound() -> datetime | None:
        if relative is None:
            return fixed
        now = time.time()
        if now - moving[0] >= 1.0:
            moving[:] = [now, relative_date(*relative, datetime.fromtimestamp(now, UTC))]
        bound: datetime | None = moving[1]
        return bound

    def match_date(properties: Mapping[str, Any]) -> bool:
        value = properties.get(key)
        actual = _datetime_of_text(value) if isinstance(value, str) else parse_datetime(value)
        if actual is None:
            return False
        bound = current_bound()
        if bound is None:
            return False
        return actual < bound if is_before else actual > bound

    return match_date


def _compile_semver(key: str, operator: str, value: Any) -> Matcher:
    if operator in SEMVER_RANGE_OPERATORS:
        lower, upper = semver_range(operator, value)

        def match_range(properties: Mapping[str, Any]) -> bool:
            actual = _version_or_none(properties.get(key))
            return actual is not None and lower <= actual < upper

        return match_range

    bound = parse_semver(value)
    compare = _COMPARISONS[operator.removeprefix("semver_")]

    def match_semver(properties: Mapping[str, Any]) -> bool:
        actual = _version_or_none(properties.get(key))
        return actual is not None and compare(actual, bound)

    return match_semver


def _version_or_none(value: Any) -> Version | None:
    return _version_of_text(value) if isinstance(value, str) else None


# A user's properties are matched by many flags in one request, and app versions and signup
# dates repeat across users: parse each text once. Bounded, and lru_cache is thread-safe.
@functools.lru_cache(maxsize=4096)
def _version_of_text(text: str) -> Version | None:
    try:
        return parse_semver(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _datetime_of_text(text: str) -> datetime | None:
    return parse_datetime(text)


def matches(f: PropertyFilter, properties: Mapping[str, Any]) -> bool:
    """Whether one filter matches the user's properties (compiles it each call: evaluation uses
    `compile_filter` once per flag instead)."""
    return compile_filter(f)(properties)
