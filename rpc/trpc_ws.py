"""tRPC v11 over WebSocket (wsLink / createWSClient), trpc-wire.md §5.

One connection: an optional `connectionParams` first frame (when the URL has
`?connectionParams=1`), then text frames holding one request or an array of them. Every request
runs in its own task so a slow call never holds up the socket; every reply is its own frame.
A frame that fails to parse is rejected whole with one `{"id":null,"error":PARSE_ERROR}` and
none of its requests run. Subscriptions answer `started`, `data`…, `stopped`, and are cancelled
when the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from rpc import codec
from rpc.envelopes import (
    WsData,
    WsId,
    WsResponse,
    WsStarted,
    WsStopped,
    bearer_token,
    connection_params,
    connection_token,
)
from rpc.errors import RpcError, error_shape, to_rpc_error
from rpc.router import NO_INPUT
from rpc.tracked import Tracked, with_last_event_id
from rpc.trpc_sse import close_quietly

MAX_IN_FLIGHT: Final = 100  # calls + live subscriptions per socket
PROCEDURE_TYPES: Final = ("query", "mutation", "subscription")


@dataclass(frozen=True)
class WsRequest:
    id: WsId
    jsonrpc: str | msgspec.UnsetType
    method: Literal["query", "mutation", "subscription", "subscription.stop"]
    path: str = ""
    input: Any = NO_INPUT
    last_event_id: str | None = None  # sent by a client re-subscribing after a tracked event


def parse_request(obj: Any) -> WsRequest:
    """Validate one request the way tRPC's `parseTRPCMessage` does (same messages, same order)."""
    if not isinstance(obj, dict):
        raise RpcError("PARSE_ERROR", "Not an object")
    if "id" not in obj or not _is_id(obj["id"]):
        raise RpcError("PARSE_ERROR", "Invalid request id")
    request_id = obj["id"]
    jsonrpc = obj.get("jsonrpc", msgspec.UNSET)
    if jsonrpc is not msgspec.UNSET and jsonrpc != "2.0":
        raise RpcError("PARSE_ERROR", "Must be JSONRPC 2.0")
    method = obj.get("method")
    if method == "subscription.stop":
        parsed = WsRequest(request_id, jsonrpc, method)
    else:
        if method not in PROCEDURE_TYPES:
            raise RpcError("PARSE_ERROR", "Invalid procedure type")
        params = obj.get("params")
        if not isinstance(params, dict):
            raise RpcError("PARSE_ERROR", "Not an object")
        path = params.get("path")
        last_event_id = params.get("lastEventId")
        if not isinstance(path, str) or (last_event_id is not None and not isinstance(last_event_id, str)):
            raise RpcError("PARSE_ERROR", "Invalid string")
        parsed = WsRequest(request_id, jsonrpc, method, path, params.get("input", NO_INPUT), last_event_id)
    if request_id is None:  # a JSON-RPC id may be null, but tRPC needs one to route replies
        raise RpcError("PARSE_ERROR", "`id` is required")
    return parsed


def _is_id(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isnan(value)
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


async def handle_trpc_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await _Connection(websocket).run()


class _Connection:
    def __init__(self, websocket: WebSocket) -> None:
        self.ws = websocket
        self.services = websocket.app.state.services
        self.token: str | None = bearer_token(websocket.headers.get("authorization"))
        self.awaiting_params = websocket.query_params.get("connectionParams") == "1"
        self.tasks: set[asyncio.Task[None]] = set()
        self.subscriptions: dict[WsId, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.closed = False
        self.last_message = asyncio.get_running_loop().time()

    async def run(self) -> None:
        settings = self.services.settings
        keep_alive = asyncio.create_task(self.keep_alive(settings.ws_ping_ms / 1000, settings.ws_pong_wait_ms / 1000))
        try:
            while not self.closed:
                message = await self.ws.receive()
                self.last_message = asyncio.get_running_loop().time()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:  # binary frame: tRPC's default decoder reads it as UTF-8 text
                    text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                await self.on_frame(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.closed = True
            keep_alive.cancel()
            # Subscriptions end with the socket. Queries and mutations run to completion (a
            # mutation cut off halfway helps nobody); their replies are dropped.
            for task in list(self.subscriptions.values()):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def keep_alive(self, ping_after: float, pong_wait: float) -> None:
        """tRPC's server keepAlive: a text `PING` after `ping_after` seconds without a message
        from the client (which answers `PONG`), and the socket closed if nothing comes within
        `pong_wait` (a peer that vanished without a close frame)."""
        if ping_after <= 0:
            return
        loop = asyncio.get_running_loop()
        while not self.closed:
            idle = loop.time() - self.last_message
            if idle < ping_after:
                await asyncio.sleep(ping_after - idle)
                continue
            pinged_at = loop.time()
            await self.send_text("PING")
            await asyncio.sleep(pong_wait)
            if self.last_message < pinged_at and not self.closed:
                self.closed = True
                with contextlib.suppress(Exception):  # the peer may already be gone
                    await self.ws.close()
                return

    async def on_frame(self, text: str) -> None:
        if text == "PING":
            await self.send_text("PONG")
            return
        if text == "PONG":
            return
        limit: int = self.services.settings.max_body_bytes
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
            await self.reject_frame(RpcError("PAYLOAD_TOO_LARGE", f"Message exceeds {limit} bytes"))
            return
        if self.awaiting_params:
            await self.on_connection_params(text)
            return
        try:
            frame = codec.decode(text)
            messages = frame if isinstance(frame, list) else [frame]
            requests = [parse_request(m) for m in messages]  # all or nothing
        except RpcError as err:
            await self.reject_frame(err)
            return
        except ValueError as exc:  # malformed JSON (msgspec.DecodeError) or nesting too deep
            await self.reject_frame(RpcError("PARSE_ERROR", str(exc)))
            return
        for request in requests:
            await self.dispatch(request)

    async def on_connection_params(self, text: str) -> None:
        """The first frame `{"method":"connectionParams","data":{…}}`; a bad one closes the socket."""
        self.awaiting_params = False
        try:
            try:
                frame = codec.decode(text)
            except ValueError:
                frame = None
            if not isinstance(frame, dict):
                raise RpcError("PARSE_ERROR", "Malformed TRPCConnectionParamsMessage")
            self.token = connection_token(connection_params(frame.get("data"))) or self.token
        except RpcError as err:
            await self.reject_frame(err)
            self.closed = True
            with contextlib.suppress(Exception):  # the peer may already be gone
                await self.ws.close()

    async def dispatch(self, request: WsRequest) -> None:
        if request.method == "subscription.stop":
            # Unknown or finished ids are ignored silently: the client stops after `stopped` too.
            task = self.subscriptions.pop(request.id, None)
            if task is not None:
                task.cancel()
            return
        if len(self.tasks) >= MAX_IN_FLIGHT:
            err = RpcError(
                "TOO_MANY_REQUESTS", f"Too many concurrent calls on this connection (limit {MAX_IN_FLIGHT})"
            )
            await self.send_error(request, err)
            return
        if request.method == "subscription":
            if request.id in self.subscriptions:
                await self.send_error(request, RpcError("BAD_REQUEST", f"Duplicate id {request.id}"))
                return
            task = asyncio.create_task(self.run_subscription(request))
            self.subscriptions[request.id] = task
        else:
            task = asyncio.create_task(self.run_call(request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def procedure_check(self, request: WsRequest) -> None:
        proc = self.services.router.lookup(request.path)
        if proc is None or proc.kind != request.method:
            raise RpcError("NOT_FOUND", f'No "{request.method}"-procedure on path "{request.path}"')

    async def run_call(self, request: WsRequest) -> None:
        try:
            self.procedure_check(request)
            value = await self.services.router.call(self.services, self.token, request.path, request.input)
            frame = codec.encode(WsResponse(request.id, request.jsonrpc, result=WsData(value)))
        except Exception as exc:  # noqa: BLE001 - per-call boundary: the failure is this id's error frame
            await self.send_error(request, exc)
            return
        await self.send_text(frame.decode())

    async def run_subscription(self, request: WsRequest) -> None:
        iterator = None
        try:
            self.procedure_check(request)
            raw_input = with_last_event_id(request.input, request.last_event_id)
            iterator = await self.services.router.subscribe(self.services, self.token, request.path, raw_input)
            await self.send_result(request, WsStarted())
            async for item in iterator:
                data = WsData({"id": item.id, "data": item.data}, item.id) if isinstance(item, Tracked) else WsData(item)
                frame = codec.encode(WsResponse(request.id, request.jsonrpc, result=data))
                await self.send_text(frame.decode())
        except asyncio.CancelledError:
            if self.closed:
                raise  # the socket is gone: nobody to tell
            # Otherwise this is `subscription.stop`: acknowledged below with `stopped`.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        except Exception as exc:  # noqa: BLE001 - per-subscription boundary: the failure is this id's error frame
            await self.send_error(request, exc)
            if iterator is None:
                return  # it never started: tRPC sends no `stopped` then
        finally:
            if self.subscriptions.get(request.id) is asyncio.current_task():
                del self.subscriptions[request.id]
            if iterator is not None:
                await close_quietly(iterator)
        await self.send_result(request, WsStopped())

    async def send_result(self, request: WsRequest, result: WsStarted | WsStopped) -> None:
        await self.send_text(codec.encode(WsResponse(request.id, request.jsonrpc, result=result)).decode())

    async def send_error(self, request: WsRequest, exc: BaseException) -> None:
        err = to_rpc_error(exc, path=request.path)
        shape = error_shape(err, request.path)
        await self.send_text(codec.encode(WsResponse(request.id, request.jsonrpc, error=shape)).decode())

    async def reject_frame(self, err: RpcError) -> None:
        """A whole-frame failure: `id: null`, no path (no request could be identified)."""
        await self.send_text(codec.encode(WsResponse(None, error=error_shape(err, None))).decode())

    async def send_text(self, text: str) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                # The peer went away between frames; the receive loop will see the disconnect.
                self.closed = True
