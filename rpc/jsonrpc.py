"""POST /rpc: JSON-RPC 2.0 dispatched through jsonrpcserver, plus the tRPC-style envelope.

The body is read with a size limit, decoded once (msgspec, bounded nesting) and split into
items here: jsonrpcserver validates a batch as a whole, so one bad item would fail all of them,
while the spec wants a per-item Invalid Request. Each item is therefore checked here and, when
it is a valid JSON-RPC request, dispatched on its own through jsonrpcserver; batch items run
concurrently and are answered in request order.

An item without `jsonrpc` whose `method` is a tRPC procedure type is a tRPC frame
(`{id, method, params:{path, input}}`, as wsLink sends it) and is answered in tRPC's shape,
`{id, result:{type:"data", data}}` or `{id, error:{message, code, data}}`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from jsonrpcserver import Error, Result, Success, async_dispatch_to_response
from oslash.either import Left  # type: ignore[import-untyped]
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from rpc import codec
from rpc.envelopes import bearer_token
from rpc.errors import (
    TRPC_CODES,
    ErrorData,
    ErrorShape,
    RpcError,
    error_shape,
    is_procedure_path,
    no_procedure,
    to_rpc_error,
)
from rpc.router import NO_INPUT, Router, decode_input
from rpc.services import Services

log = logging.getLogger("gastown.rpc")

MAX_BATCH: Final = 100
JSONRPC_VERSION: Final = "2.0"

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602

_JSON_HEADERS: Final = {"content-type": "application/json"}
_TRPC_METHODS: Final = frozenset({"query", "mutation", "subscription", "subscription.stop"})


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT: Final[Any] = _Absent()

Reply = dict[str, Any]


@dataclass(frozen=True)
class RpcContext:
    """What jsonrpcserver hands every method as its first argument."""

    services: Services
    token: str | None


async def handle_jsonrpc(request: Request) -> Response:
    if request.method == "OPTIONS":  # a CORS preflight is answered by CorsMiddleware
        return Response(status_code=204, headers={"allow": "POST, OPTIONS"})
    services: Services = request.app.state.services
    if not _is_json(request.headers.get("content-type", "")):
        return _error_response(415, INVALID_REQUEST, "Unsupported content-type", "UNSUPPORTED_MEDIA_TYPE")
    limit = services.settings.max_body_bytes
    try:
        body = await _read_body(request, limit)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is left to read the answer
    if body is None:
        return _error_response(
            413,
            TRPC_CODES["PAYLOAD_TOO_LARGE"][0],
            f"Request body larger than {limit} bytes",
            "PAYLOAD_TOO_LARGE",
        )
    ctx = RpcContext(services=services, token=bearer_token(request.headers.get("authorization")))
    payload = await answer(ctx, body)
    if payload is None:
        return Response(status_code=204)
    return Response(payload, status_code=200, headers=_JSON_HEADERS)


async def answer(ctx: RpcContext, body: bytes) -> bytes | None:
    """The encoded reply to a request body, or None when nothing is to be answered."""
    try:
        message = codec.decode(body)
    except msgspec.DecodeError as exc:
        return codec.encode(_protocol_error(None, PARSE_ERROR, f"Parse error: {exc}", "PARSE_ERROR"))
    except (ValueError, RecursionError):  # nesting deeper than the codec allows
        message_text = f"Invalid request: JSON nesting deeper than {codec.MAX_JSON_DEPTH} levels"
        return codec.encode(_protocol_error(None, INVALID_REQUEST, message_text, "BAD_REQUEST"))
    if not isinstance(message, list):
        reply = await _answer_item(ctx, message)
        return None if reply is None else _encode_reply(reply)
    if not message:
        return codec.encode(_invalid_request(None, "Invalid request: empty batch"))
    if len(message) > MAX_BATCH:
        return codec.encode(_invalid_request(None, f"Invalid request: batch of more than {MAX_BATCH} calls"))
    replies = await asyncio.gather(*(_answer_item(ctx, item) for item in message))
    parts = [_encode_reply(reply) for reply in replies if reply is not None]
    return b"[" + b",".join(parts) + b"]" if parts else None


async def _answer_item(ctx: RpcContext, item: Any) -> Reply | None:
    try:
        if isinstance(item, dict) and _is_trpc_frame(item):
            return await _answer_trpc(ctx, item)
        return await _answer_jsonrpc(ctx, item)
    except Exception as exc:  # noqa: BLE001 — best-effort boundary: one item never fails the rest
        err = to_rpc_error(exc)
        return {"jsonrpc": JSONRPC_VERSION, "error": error_shape(err), "id": None}


# --- JSON-RPC 2.0 -------------------------------------------------------------------------


async def _answer_jsonrpc(ctx: RpcContext, item: Any) -> Reply | None:
    checked = _check_request(item)
    if not isinstance(checked, _Checked):
        return checked
    methods = _methods_for(ctx.services.router)
    response = await async_dispatch_to_response(
        "",
        methods,
        context=ctx,
        # The item is already decoded and checked; hand it to jsonrpcserver as it is.
        deserializer=lambda _: checked.request,
        validator=lambda request: request,
    )
    if response is None:  # a notification
        return None
    return _from_response(response, checked.request["method"])


@dataclass(frozen=True)
class _Checked:
    request: dict[str, Any]


def _check_request(item: Any) -> _Checked | Reply | None:
    """A request normalized for jsonrpcserver, an error reply, or None (a silent notification).

    `params` is normalized to a positional list of at most one value, the procedure input:
    an object becomes `[object]`, `[x]` stays, `[]` or no params means no input.
    """
    if not isinstance(item, dict):
        return _invalid_request(None, "Invalid request: expected an object")
    request_id = item.get("id", _ABSENT)
    id_valid = request_id is _ABSENT or _valid_id(request_id, allow_null=True)
    reply_id = request_id if id_valid and request_id is not _ABSENT else None
    if item.get("jsonrpc") != JSONRPC_VERSION:
        return _invalid_request(reply_id, 'Invalid request: `jsonrpc` must be "2.0"')
    if not id_valid:
        return _invalid_request(None, "Invalid request: `id` must be a string, a number or null")
    method = item.get("method")
    if not isinstance(method, str):
        return _invalid_request(reply_id, "Invalid request: `method` must be a string")
    params = item.get("params", _ABSENT)
    if params is _ABSENT:
        positional: list[Any] = []
    elif isinstance(params, dict):
        positional = [params]
    elif isinstance(params, list):
        positional = params
    else:
        return _invalid_request(reply_id, "Invalid request: `params` must be an object or an array")
    if len(positional) > 1:
        if request_id is _ABSENT:
            return None
        message = "Invalid params: expected an object or an array of one object"
        return _protocol_error(reply_id, INVALID_PARAMS, message, "BAD_REQUEST", path=method)
    request: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": method, "params": positional}
    if request_id is not _ABSENT:
        request["id"] = request_id
    return _Checked(request)


MethodFn = Callable[..., Awaitable[Result]]
_methods_cache: weakref.WeakKeyDictionary[Router, dict[str, MethodFn]] = weakref.WeakKeyDictionary()


def _methods_for(router: Router) -> dict[str, MethodFn]:
    """jsonrpcserver's `methods`: one entry per query and mutation (subscriptions are not found)."""
    methods = _methods_cache.get(router)
    if methods is None:
        methods = {}
        for path in router.paths():
            proc = router.lookup(path)
            if proc is not None and proc.kind in ("query", "mutation"):
                methods[path] = _make_method(path)
        _methods_cache[router] = methods
    return methods


def _make_method(path: str) -> MethodFn:
    async def method(ctx: RpcContext, raw_input: Any = NO_INPUT, /) -> Result:
        router = ctx.services.router
        try:
            output = await router.call(ctx.services, ctx.token, path, raw_input)
            # Encoded here so an unencodable output is this call's error, with its path.
            encoded = msgspec.Raw(codec.encode(output))
        except Exception as exc:  # noqa: BLE001 — all become error objects (to_rpc_error logs)
            err = to_rpc_error(exc, path=path)
            if err.code == "BAD_REQUEST" and _input_rejected(router, path, raw_input):
                shape = _shape(INVALID_PARAMS, err.message, "BAD_REQUEST", path)
            else:
                shape = error_shape(err, path)
            return Error(shape.code, shape.message, shape.data)
        return Success(encoded)

    method.__name__ = path
    return method


def _input_rejected(router: Router, path: str, raw_input: Any) -> bool:
    """Whether a BAD_REQUEST came from the input Struct (-32602) rather than the procedure."""
    proc = router.lookup(path)
    if proc is None:
        return False
    try:
        decode_input(proc, raw_input)
    except RpcError:
        return True
    return False


def _from_response(response: Any, method: str) -> Reply:
    """jsonrpcserver's Either(ErrorResponse | SuccessResponse) as a reply dict."""
    if not isinstance(response, Left):
        success = response._value
        return {"jsonrpc": JSONRPC_VERSION, "result": success.result, "id": success.id}
    failure = response._error
    data = failure.data
    if isinstance(data, ErrorData):
        shape = ErrorShape(message=failure.message, code=failure.code, data=data)
    elif failure.code == METHOD_NOT_FOUND:
        shape = _shape(METHOD_NOT_FOUND, "Method not found", "NOT_FOUND", method)
    else:
        # Produced by jsonrpcserver itself (its data would be an exception's text, which
        # must not reach the client; the library has already logged it).
        shape = _shape(failure.code, "Internal server error", "INTERNAL_SERVER_ERROR", method)
    return {"jsonrpc": JSONRPC_VERSION, "error": shape, "id": failure.id}


# --- tRPC-style envelope -----------------------------------------------------------------


def _is_trpc_frame(item: dict[str, Any]) -> bool:
    method = item.get("method")
    # Any JSON value may arrive here: only a string is looked up (an object is unhashable).
    if not isinstance(method, str) or method not in _TRPC_METHODS:
        return False
    params = item.get("params")
    return "jsonrpc" not in item or (isinstance(params, dict) and "path" in params)


async def _answer_trpc(ctx: RpcContext, item: dict[str, Any]) -> Reply | None:
    request_id = item.get("id", _ABSENT)
    jsonrpc = item.get("jsonrpc", _ABSENT)
    kind = item["method"]

    def reply(request_id: Any, body: dict[str, Any]) -> Reply:
        out: Reply = {"id": request_id}
        if jsonrpc == JSONRPC_VERSION:  # echoed only when valid: client garbage never goes back
            out["jsonrpc"] = jsonrpc
        out.update(body)
        return out

    def fail(request_id: Any, err: RpcError, path: str | None = None) -> Reply:
        return reply(request_id, {"error": error_shape(err, path)})

    if jsonrpc is not _ABSENT and jsonrpc != JSONRPC_VERSION:
        return fail(None, RpcError("PARSE_ERROR", "Must be JSONRPC 2.0"))
    if request_id is _ABSENT or not _valid_id(request_id, allow_null=False):
        return fail(None, RpcError("PARSE_ERROR", "Invalid request id"))
    if kind == "subscription.stop":  # nothing runs here that could be stopped
        return None
    params = item.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("path"), str):
        return fail(request_id, RpcError("PARSE_ERROR", "`params` must be an object with a string `path`"))
    path: str = params["path"]
    if kind == "subscription":
        message = "Subscriptions are served over WebSocket or SSE at /trpc, not /rpc"
        return fail(request_id, RpcError("METHOD_NOT_SUPPORTED", message), path)
    router = ctx.services.router
    proc = router.lookup(path)
    if proc is None:
        return fail(request_id, no_procedure(path), path)
    if proc.kind != kind:
        return fail(request_id, RpcError("NOT_FOUND", f'No "{kind}"-procedure on path "{path}"'), path)
    try:
        output = await router.call(ctx.services, ctx.token, path, params.get("input", NO_INPUT))
        encoded = msgspec.Raw(codec.encode(output))
    except Exception as exc:  # noqa: BLE001 — all become error frames (to_rpc_error logs)
        return fail(request_id, to_rpc_error(exc, path=path), path)
    return reply(request_id, {"result": {"type": "data", "data": encoded}})


# --- shared helpers ----------------------------------------------------------------------


def _valid_id(value: Any, *, allow_null: bool) -> bool:
    if value is None:
        return allow_null
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _shape(code: int, message: str, trpc_code: str, path: str | None = None) -> ErrorShape:
    data = ErrorData(
        code=trpc_code,
        httpStatus=TRPC_CODES[trpc_code][1],
        path=path if is_procedure_path(path) else msgspec.UNSET,
    )
    return ErrorShape(message=message, code=code, data=data)


def _protocol_error(
    request_id: Any, code: int, message: str, trpc_code: str, path: str | None = None
) -> Reply:
    return {"jsonrpc": JSONRPC_VERSION, "error": _shape(code, message, trpc_code, path), "id": request_id}


def _invalid_request(request_id: Any, message: str) -> Reply:
    return _protocol_error(request_id, INVALID_REQUEST, message, "BAD_REQUEST")


def _encode_reply(reply: Reply) -> bytes:
    try:
        return codec.encode(reply)
    except Exception as exc:  # noqa: BLE001 — best-effort boundary: unencodable reply
        fallback = {key: value for key, value in reply.items() if key in ("jsonrpc", "id")}
        fallback["error"] = error_shape(to_rpc_error(exc))
        return codec.encode(fallback)


def _error_response(status: int, code: int, message: str, trpc_code: str) -> Response:
    body = codec.encode(_protocol_error(None, code, message, trpc_code))
    return Response(body, status_code=status, headers=_JSON_HEADERS)


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds `limit` bytes (Content-Length is only a hint)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
