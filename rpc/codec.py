"""One serialization path: msgspec JSON in and out, shared by every transport."""

from __future__ import annotations

from typing import Any

import msgspec

# Bound JSON nesting so a hostile body cannot recurse the decoder deep (msgspec itself is
# iterative-safe, but the Python objects we build from it are walked recursively later).
MAX_JSON_DEPTH = 64

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def decode(data: bytes | str) -> Any:
    """Decode untyped JSON; raises msgspec.DecodeError (with a readable message) or ValueError."""
    try:
        value = _decoder.decode(data)
    except RecursionError:  # msgspec's own nesting limit, far past ours
        raise ValueError(f"JSON nesting deeper than {MAX_JSON_DEPTH} levels") from None
    if _may_nest_deeper(data, MAX_JSON_DEPTH) and _depth_exceeds(value, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nesting deeper than {MAX_JSON_DEPTH} levels")
    return value


def _may_nest_deeper(data: bytes | str, limit: int) -> bool:
    """False when the text has too few brackets to nest past `limit` (brackets inside strings
    only make this count higher), so the walk below is skipped for the usual small inputs."""
    if isinstance(data, str):
        return data.count("{") + data.count("[") > limit
    return data.count(b"{") + data.count(b"[") > limit


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False
