"""The shared JSON decoder's nesting limit (rpc/codec.py), on both sides of the bracket count
that lets it skip the walk."""

from __future__ import annotations

import pytest

from rpc.codec import MAX_JSON_DEPTH, decode


def nested(depth: int, *, padding: str = "") -> str:
    """`depth` nested arrays around one string (which may itself contain brackets)."""
    return "[" * depth + f'"{padding}"' + "]" * depth


@pytest.mark.parametrize("as_bytes", [False, True])
def test_nesting_up_to_the_limit_is_accepted(as_bytes: bool) -> None:
    text = nested(MAX_JSON_DEPTH)
    assert decode(text.encode() if as_bytes else text) is not None


@pytest.mark.parametrize("as_bytes", [False, True])
def test_nesting_past_the_limit_is_refused(as_bytes: bool) -> None:
    text = nested(MAX_JSON_DEPTH + 1)
    with pytest.raises(ValueError, match="nesting deeper"):
        decode(text.encode() if as_bytes else text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = nested(3, padding="[{" * MAX_JSON_DEPTH)
    assert decode(text) == [[["[{" * MAX_JSON_DEPTH]]]


def test_objects_count_like_arrays() -> None:
    deep = '{"a":' * MAX_JSON_DEPTH + "[]" + "}" * MAX_JSON_DEPTH
    with pytest.raises(ValueError, match="nesting deeper"):
        decode(deep)
    assert decode('{"a":' * (MAX_JSON_DEPTH - 1) + "[]" + "}" * (MAX_JSON_DEPTH - 1)) is not None
