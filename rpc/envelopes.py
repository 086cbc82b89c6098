"""Wire envelopes and credentials shared by the tRPC adapters (HTTP, JSON lines, SSE, WebSocket).

The envelopes follow tRPC v11 with no transformer (trpc-wire.md §1–§5). Results are built
from an already-encoded value so a batch can encode each call once, inside that call's own
error handling (an unencodable output is that call's INTERNAL_SERVER_ERROR, not the batch's).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from rpc.codec import encode
from rpc.errors import ErrorShape, RpcError, error_shape

# Every tRPC HTTP response carries these (the Node adapter sets them on every answer).
VARY: Final = "trpc-accept, accept"
JSON_HEADERS: Final[dict[str, str]] = {"vary": VARY, "content-type": "application/json"}


def result_json(data_json: bytes) -> bytes:
    """`{"result":{"data":<data>}}` around an encoded value."""
    return b'{"result":{"data":' + data_json + b"}}"


def error_json(err: RpcError, path: str | None) -> bytes:
    """`{"error":{message, code, data:{code, httpStatus[, path]}}}`; no path = request-level."""
    return b'{"error":' + encode(error_shape(err, path)) + b"}"


# WebSocket result payloads: `{"type":"data","data":…}`, `{"type":"started"}`, `{"type":"stopped"}`.
class WsData(msgspec.Struct, tag="data", tag_field="type", omit_defaults=True):
    data: Any
    id: str | msgspec.UnsetType = msgspec.UNSET  # a `tracked` event's id (data is then {id, data})


class WsStarted(msgspec.Struct, tag="started", tag_field="type"):
    pass


class WsStopped(msgspec.Struct, tag="stopped", tag_field="type"):
    pass


WsId = str | int | float | None


class WsResponse(msgspec.Struct, omit_defaults=True):
    """One server frame. `jsonrpc` is echoed only when the request carried it; key order
    (`id, jsonrpc, result|error`) is the real server's."""

    id: WsId
    jsonrpc: str | msgspec.UnsetType = msgspec.UNSET
    result: WsData | WsStarted | WsStopped | msgspec.UnsetType = msgspec.UNSET
    error: ErrorShape | msgspec.UnsetType = msgspec.UNSET


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <t>` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def connection_params(value: Any) -> dict[str, str | None] | None:
    """Validate tRPC `connectionParams` (an object of string or null values, or absent)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) or v is None for v in value.values()):
        raise RpcError("PARSE_ERROR", "Invalid connection params shape")
    return value


def connection_token(params: dict[str, str | None] | None) -> str | None:
    return params.get("token") if params else None
