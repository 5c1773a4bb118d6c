"""How deep a JSON text nests, measured without recursion, before a decoder recurses into it.

msgspec decodes (and skips unknown fields) recursively: ~1,500 levels of `[` exhaust its
recursion guard and raise RecursionError, a 20 KB body 10,000 deep. Nothing here recurses, and
nothing here decodes: the text is only scanned, in time linear in its length.
"""

import re
from dataclasses import dataclass

import msgspec

_NOT_MARKS = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_SQUARE = bytes.maketrans(b"{}", b"[]")
_CHUNK = 4096


def is_deeper_than(text: bytes, limit: int) -> bool:
    """Whether any point of `text` may be inside more than `limit` arrays or objects, brackets
    in strings aside. Exact for texts up to `limit` / 2 deep, which every valid body is (it
    may overstate a deeper one by up to its own depth: then deep_values says where).

    Each step is a C-speed pass (no Python step per byte): this runs on every body, so most
    bodies are done with in microseconds, and a 5 MiB one in milliseconds."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    if b"\\" in text:
        # Escape pairs go first ('\\' then '\"'), so that every '"' left opens or closes a string.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = text.translate(None, _NOT_MARKS)
    # An empty string, or the end of one and the start of the next with no bracket between:
    # either way a '""' removed leaves every other quote opening or closing as before.
    marks = marks.replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[::2])  # what is outside the strings that remain
    brackets = marks.translate(_SQUARE)
    depth = 0  # at the start of each chunk (a stray ']' may take it below 0: msgspec stops there)
    for offset in range(0, len(brackets), _CHUNK):
        chunk = brackets[offset : offset + _CHUNK]
        opens = chunk.count(b"[")
        if depth + opens > limit and _chunk_depth_over(chunk, opens, limit - depth):
            return True
        depth += 2 * opens - len(chunk)
    return False


def _chunk_depth_over(chunk: bytes, opens: int, room: int) -> bool:
    """Whether `chunk` (only '[' and ']') nests more than `room` levels from its start; a ']'
    with nothing open in the chunk counts as nothing (so it may overstate, never understate)."""
    if room < 0:
        return True
    # Close what the chunk leaves open, so that every '[' has its ']'. Then each pass removes
    # the innermost level of every container ('[]'): one `room` deep is gone after `room`
    # passes. (An unmatched ']' never sits between a '[' and its ']'.)
    chunk += b"]" * opens
    for _ in range(room):
        chunk = chunk.replace(b"[]", b"")
        if b"[" not in chunk:
            return False
    return True


@dataclass(frozen=True, slots=True)
class DeepValue:
    """An array or object that opens deeper than the limit: where it is, and its place."""

    path: tuple[str | int | None, ...]
    """Keys and indexes from the top down to it (None: a key that is not a plain string)."""
    start: int
    end: int


_TOKEN = re.compile(rb'["\[\]{},:]')
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_KEY_DEPTH = 4
"""Keys are read down to this depth only: enough to tell `events[i].properties` apart."""


def _key(quoted: bytes) -> str | None:
    try:
        key = msgspec.json.decode(quoted)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return key if isinstance(key, str) else None


class _Frame:
    """An open container: the index or key of the value being read in it."""

    __slots__ = ("is_object", "place")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.place: str | int | None = None if is_object else 0


class TooComplex(Exception):
    """The scan ran out of its step budget before it could say where the deep values are."""


_BRACKET = re.compile(rb"[\[\]{}]")


def _skip_deep(text: bytes, position: int, extra: int, budget: list[int]) -> tuple[int, int]:
    """From inside a deep value `extra` levels in: the position just after it closes (or the
    end of the text, or the next string), and the levels still open there. Runs of brackets
    are crossed a chunk at a time where they cannot close it (C-speed counts), so a megabyte
    of '[' costs a few hundred steps, not a million."""
    quote = text.find(b'"', position)
    stop = quote if quote >= 0 else len(text)
    while position < stop:
        chunk_end = min(position + _CHUNK, stop)
        chunk = text[position:chunk_end]
        closes = chunk.count(b"]") + chunk.count(b"}")
        budget[0] -= 1
        if closes < extra:
            extra += chunk.count(b"[") + chunk.count(b"{") - closes
            position = chunk_end
            continue
        for bracket in _BRACKET.finditer(text, position, chunk_end):
            budget[0] -= 1
            extra += 1 if bracket[0] in (b"[", b"{") else -1
            if not extra:
                return bracket.end(), 0
        if budget[0] < 0:
            raise TooComplex
        position = chunk_end
    return stop, extra


def deep_values(text: bytes, limit: int, *, first_only: bool = False, budget: int = 200_000) -> list[DeepValue]:
    """Every outermost array or object of `text` that opens more than `limit` levels deep (or
    the first one, whose end is then not looked for: `end` is the end of the text).

    Slower than is_deeper_than (a Python step per token): for texts it found too deep only,
    and bounded by `budget` steps (~0.1 s), past which it raises TooComplex. Lenient as a
    scanner must be: what msgspec would refuse (a stray ']', a truncated text) is stepped
    over, never raised."""
    found: list[DeepValue] = []
    stack: list[_Frame] = []
    last_key: str | None = None
    extra = 0  # levels open beyond the limit, inside the current deep value
    start = 0
    path: tuple[str | int | None, ...] = ()
    position = 0
    size = len(text)
    steps = [budget]
    while True:
        if extra:
            position, extra = _skip_deep(text, position, extra, steps)
            if not extra:
                found.append(DeepValue(path, start, position))
                continue
        token = _TOKEN.search(text, position)
        if token is None:
            break
        steps[0] -= 1
        if steps[0] < 0:
            raise TooComplex
        at = token.start()
        char = text[at]
        position = at + 1
        if char == 0x22:  # '"': a string, stepped over whole
            string = _STRING.match(text, at)
            position = string.end() if string else size
            if not extra and stack and stack[-1].is_object and len(stack) <= _KEY_DEPTH:
                last_key = _key(text[at:position])
        elif extra:
            continue  # only a string can stop _skip_deep before the deep value ends
        elif char in b"[{":
            if len(stack) == limit:
                start, path, extra = at, tuple(frame.place for frame in stack), 1
                if first_only:
                    return [DeepValue(path, start, size)]
            else:
                stack.append(_Frame(is_object=char == 0x7B))
        elif not stack:
            continue
        elif char in b"]}":
            stack.pop()
        elif char == 0x2C and not stack[-1].is_object:  # ',' in an array: the next index
            index = stack[-1].place
            stack[-1].place = index + 1 if isinstance(index, int) else 0
        elif char == 0x3A and stack[-1].is_object:  # ':' in an object: the key just read
            stack[-1].place = last_key
            last_key = None
    if extra:
        found.append(DeepValue(path, start, size))
    return found


def cut(text: bytes, values: list[DeepValue], placeholder: bytes = b"null") -> bytes:
    """`text` with each of `values` (from deep_values) replaced by `placeholder`."""
    pieces = []
    position = 0
    for value in values:
        pieces += [text[position : value.start], placeholder]
        position = value.end
    pieces.append(text[position:])
    return b"".join(pieces)
