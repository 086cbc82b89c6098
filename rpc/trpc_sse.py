"""tRPC v11 subscriptions over Server-Sent Events (httpSubscriptionLink), trpc-wire.md §4.

`GET /trpc/<subscription path>?input=…[&connectionParams=…]` answers 200 `text/event-stream`:
`connected`, one `data:` event per item, then `return` — or `serialized-error` and the end.
Errors raised while starting the subscription (auth, input, access) travel inside the stream,
as the real server does, so the client reports them instead of reconnecting blindly.
`tracked` items carry an `id:` line; a reconnecting EventSource's `Last-Event-ID` (or the
`lastEventId` query parameter) becomes `input.lastEventId`; idle streams get `event: ping`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from rpc import codec
from rpc.codec import encode
from rpc.envelopes import VARY, bearer_token, connection_params, connection_token, error_json
from rpc.errors import RpcError, error_shape, to_rpc_error
from rpc.router import NO_INPUT
from rpc.tracked import Tracked, with_last_event_id

# Each event's lines are followed by two extra newlines, exactly like the Node server.
CONNECTED: Final = b"event: connected\ndata: {}\n\n\n"
RETURN: Final = b"event: return\ndata: \n\n\n"
PING: Final = b"event: ping\ndata: \n\n\n"
SSE_HEADERS: Final[dict[str, str]] = {
    "cache-control": "no-cache, no-transform",
    # Given explicitly so Starlette does not append "; charset=utf-8".
    "content-type": "text/event-stream",
    "vary": VARY,
    "x-accel-buffering": "no",
}


class DisconnectAwareStream(StreamingResponse):
    """A StreamingResponse that stops as soon as the client goes away, whatever ASGI spec
    version the server advertises (Starlette only listens for `http.disconnect` below 2.4; a
    subscription that is idle never calls `send`, so it would never learn of the disconnect),
    and that always closes its body iterator so the producers' `finally` blocks run now."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:  # the client vanished mid-write: nothing left to tell it
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            await close_quietly(self.body_iterator)


async def close_quietly(iterator: AsyncIterable[Any] | AsyncIterator[Any]) -> None:
    """`aclose()` an async iterator if it has one, shielded from the cancellation in progress."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with anyio.CancelScope(shield=True):
        await aclose()


def json_error_response(err: RpcError, path: str | None) -> Response:
    headers = {"vary": VARY}
    if err.allow:
        headers["allow"] = err.allow
    return Response(
        error_json(err, path), status_code=err.http_status, headers=headers, media_type="application/json"
    )


async def handle_subscription(request: Request, path: str) -> Response:
    """Answer a GET on a subscription path with an event stream."""
    services = request.app.state.services
    try:
        token = _token(request)
    except RpcError as err:
        # Rejected before any call starts (like tRPC's request info parsing): plain JSON, no path.
        return json_error_response(err, None)
    raw_input = request.query_params.get("input")
    limit = services.settings.max_body_bytes
    last_event_id = _last_event_id(request)
    events = _events(services, token, path, raw_input, limit, last_event_id)
    ping_ms = services.settings.sse_ping_ms
    return DisconnectAwareStream(
        with_ping(events, ping_ms / 1000) if ping_ms > 0 else events, status_code=200, headers=SSE_HEADERS
    )


def _last_event_id(request: Request) -> str | None:
    """Where tRPC's server looks for a reconnecting EventSource's last id (trpc-wire.md §4)."""
    for value in (
        request.headers.get("last-event-id"),
        request.query_params.get("lastEventId"),
        request.query_params.get("Last-Event-Id"),
    ):
        if value:
            return value
    return None


async def with_ping(events: AsyncIterator[bytes], interval: float) -> AsyncIterator[bytes]:
    """tRPC's `withPing`: an `event: ping` whenever no event went out for `interval` seconds
    (the client ignores it; it keeps proxies and its inactivity timer from ending the stream)."""
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield PING
                continue
            task, pending = pending, None
            try:
                chunk = task.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(pending, return_exceptions=True)
        await close_quietly(events)


def _token(request: Request) -> str | None:
    """`connectionParams` query parameter (URL-encoded JSON object) first, else the header."""
    raw = request.query_params.get("connectionParams")
    if raw is not None:
        try:
            decoded = codec.decode(raw)
        except ValueError:  # msgspec.DecodeError is a ValueError too
            raise RpcError("PARSE_ERROR", "Invalid connection params shape") from None
        token = connection_token(connection_params(decoded))
        if token:
            return token
    return bearer_token(request.headers.get("authorization"))


def _decode_input(raw: str | None, limit: int) -> Any:
    if raw is None:
        return NO_INPUT
    if len(raw) > limit:
        raise RpcError("PAYLOAD_TOO_LARGE", f"Input exceeds {limit} bytes")
    try:
        return codec.decode(raw)
    except ValueError as exc:
        raise RpcError("BAD_REQUEST", str(exc)) from None


async def _events(
    services: Any, token: str | None, path: str, raw: str | None, limit: int, last_event_id: str | None
) -> AsyncIterator[bytes]:
    yield CONNECTED
    iterator: AsyncIterator[Any] | None = None
    try:
        raw_input = with_last_event_id(_decode_input(raw, limit), last_event_id)
        iterator = await services.router.subscribe(services, token, path, raw_input)
        last_id = last_event_id
        async for item in iterator:
            if isinstance(item, Tracked):
                last_id = item.id
                yield b"data: " + encode(item.data) + b"\nid: " + item.id.encode() + b"\n\n\n"
            elif last_id is None:
                yield b"data: " + encode(item) + b"\n\n\n"
            else:  # an untracked event after a tracked one: blank id, then restore it
                yield b"data: " + encode(item) + b"\nid: \n\n\n"
                yield b"event: restore-id\ndata: \nid: " + last_id.encode() + b"\n\n\n"
    except Exception as exc:  # noqa: BLE001 - every failure becomes the stream's last event, never a crash
        err = to_rpc_error(exc, path=path)
        yield b"event: serialized-error\ndata: " + encode(error_shape(err, path)) + b"\n\n\n"
        return
    finally:
        if iterator is not None:
            await close_quietly(iterator)
    yield RETURN
