"""The nesting pre-scan (contracts/nesting.py): the depth of a JSON text, without recursion."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.nesting import TooComplex, cut, deep_values, is_deeper_than

# Strings full of what a scanner could mistake for structure.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\:,ab\u00e9\x00'), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def wrapped(value, levels: int):
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


@settings(derandomize=True, max_examples=300, deadline=None)
@given(value=json_values, extra=st.integers(0, 12), limit=st.integers(1, 12), ensure_ascii=st.booleans())
def test_deep_values_are_found_exactly_when_the_text_is_deeper_than_the_limit(value, extra, limit, ensure_ascii):
    value = wrapped(value, extra)
    text = json.dumps(value, ensure_ascii=ensure_ascii).encode()
    is_deep = depth(value) > limit
    assert bool(deep_values(text, limit)) == is_deep
    if is_deep:
        assert is_deeper_than(text, limit)  # never understated
    if depth(value) * 2 <= limit:
        assert not is_deeper_than(text, limit)  # exact for the valid bodies' depths


@settings(derandomize=True, max_examples=200, deadline=None)
@given(value=json_values, extra=st.integers(0, 12), limit=st.integers(1, 12))
def test_cutting_the_deep_values_leaves_json_no_deeper_than_the_limit(value, extra, limit):
    text = json.dumps(wrapped(value, extra)).encode()
    shallow = json.loads(cut(text, deep_values(text, limit)))
    assert depth(shallow) <= limit


@settings(derandomize=True, max_examples=200, deadline=None)
@given(value=json_values, extra=st.integers(0, 12), limit=st.integers(1, 12), data=st.data())
def test_a_truncated_text_is_never_understated(value, extra, limit, data):
    text = json.dumps(wrapped(value, extra)).encode()
    prefix = text[: data.draw(st.integers(0, len(text)))]
    opened = deep_values(prefix, limit)
    if opened:
        assert is_deeper_than(prefix, limit)


def test_the_path_to_a_deep_value_names_its_keys_and_indexes():
    text = b'{"events": [{}, {"properties": {"a": [[[[1]]]]}}], "x": "[[[["}'
    [value] = deep_values(text, 5)
    assert value.path == ("events", 1, "properties", "a", 0)
    assert text[value.start : value.end] == b"[[[1]]]"  # the 6th level opens here


@pytest.mark.parametrize("text", [b"[" * 5_000_000, b"{" * 2_000_000 + b"}" * 2_000_000])
def test_megabytes_of_brackets_are_measured_quickly(text):
    assert is_deeper_than(text, 64)
    [value] = deep_values(text, 64, first_only=True)
    assert value.start == 64


def test_a_scan_that_would_take_too_long_gives_up():
    text = b"[" * 65 + b"[]" * 1_000_000
    assert is_deeper_than(text, 64)
    with pytest.raises(TooComplex):
        deep_values(text, 64)
