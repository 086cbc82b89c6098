"""tRPC v11 over HTTP: httpLink, httpBatchLink, httpBatchStreamLink (JSON lines), and the hand-off
of GETs on subscription paths to SSE (trpc-wire.md §2–§4).

A request is checked as a whole first (content type, path encoding, batch size, mixed
procedure types, streaming without batch); those failures are one error object with no
`path`. Everything after that is per call, like tRPC's lazy input parsing: an unknown path,
a wrong method, a malformed or oversized input is that call's error and carries its path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from rpc import codec
from rpc.envelopes import JSON_HEADERS, bearer_token, error_json, result_json
from rpc.errors import RpcError, no_procedure, to_rpc_error
from rpc.router import NO_INPUT, Procedure
from rpc.trpc_sse import DisconnectAwareStream, handle_subscription, json_error_response

MAX_BATCH_SIZE: Final = 100
ROUTE_PREFIX: Final = "/trpc/"
METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# Which HTTP method each procedure kind accepts (the value of a 405's `allow` header).
ALLOWED_METHOD: Final[dict[str, str]] = {"query": "GET", "mutation": "POST", "subscription": "GET"}
JSONL: Final = "application/jsonl"


@dataclass(frozen=True)
class _Outcome:
    """One call's answer: its status, its envelope and (on success) the bare encoded value."""

    status: int
    envelope: bytes
    value: bytes | None = None
    allow: str | None = None


class _Inputs:
    """The raw input of every call of a request, decoded once, errors kept per call."""

    def __init__(self, raw: bytes | str | None, count: int, batch: bool) -> None:
        self._items: list[Any] = [NO_INPUT] * count
        self._error: RpcError | None = None
        if raw is None or raw == b"":
            return  # absent input (GET without `input`, empty POST body) is tRPC `undefined`
        try:
            value = codec.decode(raw)
        except ValueError as exc:  # msgspec.DecodeError is a ValueError
            self._error = RpcError("BAD_REQUEST", str(exc))
            return
        if not batch:
            self._items[0] = value
        elif not isinstance(value, dict):
            self._error = RpcError("BAD_REQUEST", '"input" needs to be an object when doing a batch call')
        else:
            self._items = [value.get(str(i), NO_INPUT) for i in range(count)]

    @classmethod
    def failed(cls, err: RpcError, count: int) -> _Inputs:
        inputs = cls(None, count, False)
        inputs._error = err
        return inputs

    def get(self, index: int) -> Any:
        if self._error is not None:
            raise self._error
        return self._items[index]


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (`root_path`), as Starlette routes it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class TrpcHttpShortcut:
    """Sends HTTP requests under `/trpc/` straight to the adapter (pure ASGI, the innermost
    middleware). Starlette's route table, exception middleware and endpoint wrapper do nothing
    for these requests and cost about a seventh of a small call; the route in the app's table
    stays for everything this lets through (other methods get Starlette's 405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in METHODS
            and route_path(scope).startswith(ROUTE_PREFIX)
        ):
            response = await handle_trpc_http(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def handle_trpc_http(request: Request) -> Response:
    if request.method == "HEAD":
        return Response(status_code=204)
    try:
        paths, batch, streaming = _request_info(request)
        procs = [request.app.state.services.router.lookup(p) for p in paths]
        _check_batch(paths, procs, batch, streaming)
    except RpcError as err:
        return json_error_response(err, None)

    if not batch and request.method == "GET" and procs[0] is not None and procs[0].kind == "subscription":
        return await handle_subscription(request, paths[0])

    inputs = await _read_inputs(request, len(paths), batch)
    token = bearer_token(request.headers.get("authorization"))
    # Factories, not coroutines: a stream the client abandons early never starts its calls.
    calls = [
        partial(_run_call, request, token, i, path, proc, inputs)
        for i, (path, proc) in enumerate(zip(paths, procs))
    ]
    if streaming:
        return DisconnectAwareStream(_json_lines(calls), status_code=200, headers=JSON_HEADERS)
    # Calls of one batch run concurrently; the object runtime serializes per town anyway.
    outcomes: list[_Outcome] = (
        await asyncio.gather(*(call() for call in calls)) if batch else [await calls[0]()]
    )
    if batch:
        body = b"[" + b",".join(o.envelope for o in outcomes) + b"]"
    else:
        body = outcomes[0].envelope
    statuses = {o.status for o in outcomes}
    headers = dict(JSON_HEADERS)
    allows = {o.allow for o in outcomes if o.allow}
    if len(allows) == 1:
        headers["allow"] = allows.pop()
    return Response(body, status_code=statuses.pop() if len(statuses) == 1 else 207, headers=headers)


def _request_info(request: Request) -> tuple[list[str], bool, bool]:
    """Request-level checks in tRPC's order; returns (paths, is batch, is JSON-lines)."""
    if request.method != "GET" and not _is_json(request.headers.get("content-type")):
        content_type = request.headers.get("content-type")
        # The missing closing quote is tRPC's own message, kept verbatim.
        message = (
            f'Unsupported content-type "{content_type}'
            if content_type is not None
            else "Missing content-type header"
        )
        raise RpcError("UNSUPPORTED_MEDIA_TYPE", message)
    raw_path = _raw_path(request)
    if not _valid_percent_encoding(raw_path):
        raise RpcError("BAD_REQUEST", f'Invalid URL-encoding in path "{raw_path}"')
    path = unquote(raw_path, errors="strict")
    batch = request.query_params.get("batch") == "1"
    accept = request.headers.get("trpc-accept") or request.headers.get("accept") or ""
    streaming = JSONL in (a.split(";")[0].strip().lower() for a in accept.split(","))
    return (path.split(",") if batch else [path]), batch, streaming


def _check_batch(paths: list[str], procs: list[Procedure | None], batch: bool, streaming: bool) -> None:
    if len(paths) > MAX_BATCH_SIZE:
        raise RpcError("BAD_REQUEST", f"Batch call exceeds maximum size ({MAX_BATCH_SIZE})")
    kinds = list(dict.fromkeys(p.kind for p in procs if p is not None))
    if len(kinds) > 1:
        raise RpcError("BAD_REQUEST", f"Cannot mix procedure types in call: {', '.join(kinds)}")
    if streaming and not batch:
        raise RpcError("BAD_REQUEST", "Streaming requests must be batched (you can do a batch of 1)")


def _is_json(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";")[0].strip().lower() == "application/json"


def _raw_path(request: Request) -> str:
    """The procedure part of the URL still percent-encoded, so a bad escape can be reported
    (servers hand the app an already-unquoted `path`, which silently keeps `%ZZ`)."""
    raw: bytes | None = request.scope.get("raw_path")
    if raw is not None:
        text = raw.decode("utf-8", errors="replace").split("?", 1)[0]
        root = request.scope.get("root_path", "")
        if root and text.startswith(root):
            text = text[len(root) :]
        if text.startswith(ROUTE_PREFIX):
            return text[len(ROUTE_PREFIX) :]
    return route_path(request.scope).removeprefix(ROUTE_PREFIX)


def _valid_percent_encoding(text: str) -> bool:
    hexdigits = "0123456789abcdefABCDEF"
    i = text.find("%")
    while i != -1:
        if len(text) < i + 3 or text[i + 1] not in hexdigits or text[i + 2] not in hexdigits:
            return False
        i = text.find("%", i + 3)
    try:
        unquote(text, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


async def _read_inputs(request: Request, count: int, batch: bool) -> _Inputs:
    limit: int = request.app.state.services.settings.max_body_bytes
    too_large = RpcError("PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
    if request.method == "GET":
        raw = request.query_params.get("input")
        if raw is not None and len(raw) > limit:
            return _Inputs.failed(too_large, count)
        return _Inputs(raw, count, batch)
    # Read with a limit: Content-Length may be absent (chunked) or lie.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _Inputs.failed(too_large, count)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _Inputs.failed(too_large, count)
    return _Inputs(bytes(body), count, batch)


async def _run_call(
    request: Request, token: str | None, index: int, path: str, proc: Procedure | None, inputs: _Inputs
) -> _Outcome:
    services = request.app.state.services
    try:
        if proc is None:
            raise no_procedure(path)
        allowed = ALLOWED_METHOD[proc.kind]
        if request.method != allowed:
            raise RpcError(
                "METHOD_NOT_SUPPORTED",
                f'Unsupported {request.method}-request to {proc.kind} procedure at path "{path}"',
                allow=allowed,
            )
        if proc.kind == "subscription":  # only reachable inside a batch: SSE takes single GETs
            raise RpcError("BAD_REQUEST", "Subscriptions cannot be batched; use httpSubscriptionLink")
        value = await services.router.call(services, token, path, inputs.get(index))
        encoded = codec.encode(value)  # inside the try: an unencodable output is this call's 500
        return _Outcome(200, result_json(encoded), encoded)
    except Exception as exc:  # noqa: BLE001 - per-call boundary: every failure becomes this call's error envelope
        err = to_rpc_error(exc, path=path)
        return _Outcome(err.http_status, error_json(err, path), None, err.allow)


async def _json_lines(calls: Sequence[Callable[[], Awaitable[_Outcome]]]) -> AsyncIterator[bytes]:
    """httpBatchStreamLink body (trpc-wire.md §3): a head line deferring every call, then each
    call's chunks in completion order, nested call → {result} → {data} → value like the Node
    server (errors are one fulfilled `{"error":…}` chunk)."""
    count = len(calls)
    yield codec.encode({str(i): [[0], [None, 0, i]] for i in range(count)}) + b"\n"

    async def indexed(i: int, call: Callable[[], Awaitable[_Outcome]]) -> tuple[int, _Outcome]:
        return i, await call()

    tasks = [asyncio.ensure_future(indexed(i, c)) for i, c in enumerate(calls)]
    next_chunk = count
    try:
        for done in asyncio.as_completed(tasks):
            index, outcome = await done
            if outcome.value is None:
                yield b"[%d,0,[[" % index + outcome.envelope + b"]]]\n"
                continue
            result_chunk, data_chunk = next_chunk, next_chunk + 1
            next_chunk += 2
            yield b'[%d,0,[[{"result":0}],["result",0,%d]]]\n' % (index, result_chunk)
            yield b'[%d,0,[[{"data":0}],["data",0,%d]]]\n' % (result_chunk, data_chunk)
            yield b"[%d,0,[[" % data_chunk + outcome.value + b"]]]\n"
    finally:
        # The client went away (or the stream was closed): stop the calls still running.
        for task in tasks:
            task.cancel()
