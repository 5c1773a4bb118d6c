"""Property operators with PostHog's semantics, and the definitions check_filter refuses."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flags.definition import PropertyFilter
from flags.matching import MAX_REGEX_SUBJECT, OPERATORS, check_filter, matches, parse_semver, relative_date

NOW = datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


# (operator, filter value, person property value, expected)
CASES = [
    ("exact", "Pro", "pro", True),
    ("exact", "pro", "team", False),
    ("exact", ["FR", "DE"], "de", True),
    ("exact", ["FR", "DE"], "gb", False),
    ("exact", 5, 5, True),
    ("exact", 5, "5", True),
    ("exact", 5, 5.0, True),  # JSON has no 5.0: both are "5"
    ("exact", True, True, True),
    ("exact", "true", True, True),
    ("exact", True, False, False),
    ("is_not", "pro", "team", True),
    ("is_not", "pro", "PRO", False),
    ("is_not", ["a", "b"], "c", True),
    ("is_not", ["a", "b"], "B", False),
    ("icontains", "@Example.com", "ann@example.COM", True),
    ("icontains", "@example.com", "ann@other.com", False),
    ("not_icontains", "@example.com", "ann@other.com", True),
    ("not_icontains", "@example.com", "ann@EXAMPLE.com", False),
    ("icontains", "2", 123, True),
    ("starts_with", "AN", "ann", True),
    ("starts_with", "nn", "ann", False),
    ("not_starts_with", "nn", "ann", True),
    ("not_starts_with", "an", "ANN", False),
    ("ends_with", ".COM", "a@b.com", True),
    ("ends_with", ".com", "a@b.org", False),
    ("not_ends_with", ".com", "a@b.com", False),
    ("not_ends_with", ".com", "a@b.org", True),
    ("regex", r"^(pro|team)$", "team", True),
    ("regex", r"^(pro|team)$", "Team", False),  # regex is case-sensitive, as PostHog's
    ("regex", r"^\d+$", 42, True),
    ("regex", r"^true$", True, True),
    ("not_regex", r"^(pro|team)$", "free", True),
    ("not_regex", r"^(pro|team)$", "pro", False),
    ("gt", 10, 11, True),
    ("gt", 10, 10, False),
    ("gt", "9", "10", True),  # both parse as numbers: numeric, not "10" < "9"
    ("gte", 10, 10, True),
    ("gte", 10, 9.5, False),
    ("lt", 10, "9", True),
    ("lt", 10, 10, False),
    ("lte", 10, 10, True),
    ("lte", 10, 10.5, False),
    ("gt", "b", "c", True),  # not numbers: compared as text
    ("gt", "b", "a", False),
    ("lt", 5, "abc", False),  # "abc" < "5" as text is False
    ("gt", 0, True, True),  # a boolean is not a number: "true" > "0" as text
    ("is_date_before", "2025-01-01", "2024-12-31T23:59:59Z", True),
    ("is_date_before", "2025-01-01", "2025-01-02", False),
    ("is_date_after", "2025-01-01T00:00:00+00:00", "2025-01-01T01:00:00+02:00", False),  # 23:00 the day before in UTC
    ("is_date_after", "2025-01-01", "2025-01-01T00:00:01", True),  # naive: UTC
    ("is_date_after", "-7d", iso(NOW - timedelta(days=6)), True),
    ("is_date_after", "-7d", iso(NOW - timedelta(days=8)), False),
    ("is_date_before", "-24h", iso(NOW - timedelta(hours=25)), True),
    ("is_date_before", "-24h", iso(NOW - timedelta(hours=23)), False),
    ("is_date_after", "-2w", iso(NOW - timedelta(days=13)), True),
    ("is_date_before", "-1m", iso(NOW - timedelta(days=32)), True),
    ("is_date_before", "-1m", iso(NOW - timedelta(days=27)), False),
    ("is_date_after", "-1y", iso(NOW - timedelta(days=360)), True),
    ("is_date_after", "-1y", iso(NOW - timedelta(days=370)), False),
    ("is_date_before", "2025-01-01", 1_600_000_000, False),  # a number is not a date here
    ("semver_eq", "1.2.3", "v1.2.3", True),
    ("semver_eq", "1.2", "1.2.0-beta.1", True),  # pre-release dropped, missing parts 0
    ("semver_eq", "1.2.3", "1.2.4", False),
    ("semver_neq", "1.2.3", "1.2.4", True),
    ("semver_neq", "1.2.3", "1.2.3", False),
    ("semver_gt", "1.2.3", "1.10.0", True),  # numeric, not text, order
    ("semver_gt", "1.2.3", "1.2.3", False),
    ("semver_gte", "1.2.3", "1.2.3", True),
    ("semver_gte", "1.2.3", "1.2.2", False),
    ("semver_lt", "2.0.0", "1.99.99", True),
    ("semver_lt", "2.0.0", "2.0.0", False),
    ("semver_lte", "2.0.0", "2.0.0", True),
    ("semver_lte", "2.0.0", "2.0.1", False),
    ("semver_tilde", "1.2.3", "1.2.9", True),
    ("semver_tilde", "1.2.3", "1.3.0", False),
    ("semver_tilde", "1.2.3", "1.2.2", False),
    ("semver_caret", "1.2.3", "1.9.0", True),
    ("semver_caret", "1.2.3", "2.0.0", False),
    ("semver_caret", "0.2.3", "0.2.9", True),
    ("semver_caret", "0.2.3", "0.3.0", False),
    ("semver_caret", "0.0.3", "0.0.3", True),
    ("semver_caret", "0.0.3", "0.0.4", False),
    ("semver_wildcard", "1.*", "1.99.0", True),
    ("semver_wildcard", "1.*", "2.0.0", False),
    ("semver_wildcard", "1.2.*", "1.2.7", True),
    ("semver_wildcard", "1.2.*", "1.3.0", False),
    ("semver_gt", "1.0.0", "not-a-version", False),
    ("semver_neq", "1.0.0", "01.0.0", False),  # leading zero: not a version, matches nothing
    ("semver_eq", "2.0.0", "².0.0", False),  # not an ASCII digit
    ("is_set", None, "anything", True),
    ("is_set", None, None, True),  # present, even null (posthog-node)
    ("is_not_set", None, "anything", False),
]


# Ids without the times made from NOW: each pytest-xdist worker collects at its own moment.
@pytest.mark.parametrize(
    ("operator", "value", "actual", "expected"),
    CASES,
    ids=[f"{n}-{operator}-{value}-{expected}" for n, (operator, value, _, expected) in enumerate(CASES)],
)
def test_each_operator_as_posthog(operator, value, actual, expected):
    f = PropertyFilter(key="prop", operator=operator, value=value)
    assert check_filter(f) is None
    assert matches(f, {"prop": actual}) is expected


def test_the_cases_cover_every_operator_both_ways():
    for operator in OPERATORS - {"is_set", "is_not_set"}:
        outcomes = {expected for op, _, _, expected in CASES if op == operator}
        assert outcomes == {True, False}, operator


def valid_value(operator):
    return next(value for op, value, _, _ in CASES if op == operator)


@pytest.mark.parametrize("operator", sorted(OPERATORS - {"is_not_set"}))
def test_an_absent_property_matches_nothing(operator):
    f = PropertyFilter(key="prop", operator=operator, value=valid_value(operator))
    assert matches(f, {"other": "x"}) is False


def test_an_absent_property_is_not_set():
    assert matches(PropertyFilter(key="prop", operator="is_not_set"), {"other": "x"}) is True


@pytest.mark.parametrize("operator", sorted(OPERATORS - {"is_not", "is_set", "is_not_set"}))
def test_a_null_property_fails_the_comparison(operator):
    # posthog-node's null guard: every operator but is_not and is_set.
    f = PropertyFilter(key="prop", operator=operator, value=valid_value(operator))
    assert matches(f, {"prop": None}) is False


def test_a_null_property_is_not_a_value():
    assert matches(PropertyFilter(key="prop", operator="is_not", value="x"), {"prop": None}) is True


def test_the_default_operator_is_exact():
    f = PropertyFilter(key="plan", value="pro")
    assert matches(f, {"plan": "PRO"}) is True
    assert matches(f, {"plan": "free"}) is False


def test_a_regex_never_runs_on_an_overlong_subject():
    f = PropertyFilter(key="p", operator="regex", value="a")
    not_f = PropertyFilter(key="p", operator="not_regex", value="b")
    at_cap = "a" * MAX_REGEX_SUBJECT
    assert matches(f, {"p": at_cap}) is True
    assert matches(f, {"p": at_cap + "a"}) is False
    assert matches(not_f, {"p": at_cap + "a"}) is False


def test_lists_and_objects_compare_as_json_text():
    assert matches(PropertyFilter(key="p", operator="icontains", value='"b"'), {"p": ["a", "b"]}) is True
    assert matches(PropertyFilter(key="p", operator="exact", value='{"a":1}'), {"p": {"a": 1}}) is True


def test_a_month_before_the_31st_is_clamped_to_the_month_end():
    assert relative_date(1, "m", datetime(2025, 3, 31, 12, tzinfo=UTC)) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert relative_date(1, "y", datetime(2024, 2, 29, tzinfo=UTC)) == datetime(2023, 2, 28, tzinfo=UTC)
    assert relative_date(14, "m", datetime(2025, 1, 15, tzinfo=UTC)) == datetime(2023, 11, 15, tzinfo=UTC)
    assert relative_date(2, "w", datetime(2025, 1, 15, tzinfo=UTC)) == datetime(2025, 1, 1, tzinfo=UTC)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_matching_never_raises_on_any_json_property(actual):
    for operator, value, _, _ in CASES:
        result = matches(PropertyFilter(key="p", operator=operator, value=value), {"p": actual})
        assert isinstance(result, bool)


def test_matching_never_raises_on_values_no_json_decoder_makes():
    for actual in (10**5000, -(10**5000), float("inf"), float("nan"), object(), b"\xff", {1, 2}):
        for operator, value, _, _ in CASES:
            assert matches(PropertyFilter(key="p", operator=operator, value=value), {"p": actual}) in (True, False)


@pytest.mark.parametrize(
    ("f", "field", "fragment"),
    [
        (PropertyFilter(key="", value="x"), "key", "names a property"),
        (PropertyFilter(key="p", operator="equals", value="x"), "operator", "unknown operator 'equals'"),
        (PropertyFilter(key="p", operator="regex", value="(unclosed"), "value", "not a regular expression"),
        (PropertyFilter(key="p", operator="regex", value=5), "value", "regular expression"),
        (PropertyFilter(key="p", operator="regex", value="a{99999999999}"), "value", "too large"),
        (PropertyFilter(key="p", operator="regex", value="(" * 1000 + ")" * 1000), "value", "at most 1000"),
        (PropertyFilter(key="p", operator="regex", value="(" * 499 + ")" * 499), "value", "too large"),
        (PropertyFilter(key="p", operator="regex", value="(a+)+$"), "value", "exponential"),
        (PropertyFilter(key="p", operator="not_regex", value=r"^(\w*)*@"), "value", "exponential"),
        (PropertyFilter(key="p", operator="exact", value=None), "value", "compares with"),
        (PropertyFilter(key="p", operator="exact", value=[]), "value", "at least one"),
        (PropertyFilter(key="p", operator="is_not", value=[{"a": 1}]), "value", "compares with"),
        (PropertyFilter(key="p", operator="icontains", value=True), "value", "needs a string"),
        (PropertyFilter(key="p", operator="gt", value=[1]), "value", "number or a string"),
        (PropertyFilter(key="p", operator="is_date_before", value="yesterday"), "value", "ISO 8601"),
        (PropertyFilter(key="p", operator="is_date_after", value="-7q"), "value", "ISO 8601"),
        (PropertyFilter(key="p", operator="is_date_after", value="-10000d"), "value", "ISO 8601"),
        (PropertyFilter(key="p", operator="is_date_after", value=20250101), "value", "ISO 8601"),
        (PropertyFilter(key="p", operator="semver_gt", value="1.x"), "value", "version like 1.2.3"),
        (PropertyFilter(key="p", operator="semver_eq", value="01.2.3"), "value", "version like 1.2.3"),
        (PropertyFilter(key="p", operator="semver_eq", value=1.2), "value", "version like 1.2.3"),
        (PropertyFilter(key="p", operator="semver_caret", value=""), "value", "version like 1.2.3"),
        (PropertyFilter(key="p", operator="semver_wildcard", value="*"), "value", "version like 1.2.*"),
        (PropertyFilter(key="p", operator="semver_wildcard", value="1.2.3"), "value", "version like 1.2.*"),
    ],
)
def test_check_filter_refuses_what_cannot_be_evaluated(f, field, fragment):
    problem = check_filter(f)
    assert problem is not None
    assert problem[0] == field
    assert fragment in problem[1]


@pytest.mark.parametrize(
    "pattern", [r"^[a-z]+(\.[a-z]+)*@example\.com$", r"([a-z0-9-]+\.)+com$", r"^(pro|team)$", r"(a\+)+", r"^\d{3}-\d+$"]
)
def test_common_patterns_with_repeated_groups_are_accepted(pattern):
    assert check_filter(PropertyFilter(key="p", operator="regex", value=pattern)) is None


@pytest.mark.parametrize("pattern", [r"(a+)+b", r"(x+x+)+y", r"(?:.*)*z", r"(?P<n>\d+)+$", r"([ab]*)*c", r"(\w+\s?)*$"])
def test_the_usual_catastrophic_backtracking_shapes_are_refused(pattern):
    problem = check_filter(PropertyFilter(key="p", operator="regex", value=pattern))
    assert problem is not None and "exponential" in problem[1]


def test_a_refused_filter_never_matches():
    assert matches(PropertyFilter(key="p", operator="regex", value="(unclosed"), {"p": "(unclosed"}) is False
    assert matches(PropertyFilter(key="p", operator="nope", value="x"), {"p": "x"}) is False


def test_semver_parsing_as_posthog():
    assert parse_semver(" v1.2.3-rc.1+build.5 ") == (1, 2, 3)
    assert parse_semver("2") == (2, 0, 0)
    assert parse_semver("1.2.3.4") == (1, 2, 3)
    for bad in ("", "v", ".1.2", "1.02.3", "a.b.c"):
        with pytest.raises(ValueError):
            parse_semver(bad)


def test_posthogs_current_semver_operator_names_are_the_ones_accepted():
    # posthog-python feature_flags.py SEMVER_COMPARISON_OPERATORS + SEMVER_RANGE_OPERATORS.
    assert {op for op in OPERATORS if op.startswith("semver_")} == {
        "semver_eq",
        "semver_neq",
        "semver_gt",
        "semver_gte",
        "semver_lt",
        "semver_lte",
        "semver_tilde",
        "semver_caret",
        "semver_wildcard",
    }
