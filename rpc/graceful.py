"""Graceful stop for event streams: when the server stops, an SSE response ends cleanly.

uvicorn's graceful shutdown lets in-flight requests finish (up to its timeout) and sends
WebSocket clients a close frame (1012), but an event stream never finishes by itself: it
would be cut off at the timeout without its terminating chunk, which a client sees as a
reset. `stopping` is set by rpc/serve.py's server before uvicorn starts shutting down; from
then on a streaming response (text/event-stream) is told its client left (the stream's
producers are closed as on a real disconnect) and the response is completed with an empty
final body, so the client reads a clean end of stream and reconnects (with its Last-Event-ID)
to the next server. Every other request is left alone to finish.

uvicorn cancels the calls still running at its timeout and at once runs the lifespan's
shutdown; `InFlight` lets the lifespan wait for those cancelled calls to unwind (a fork
discards its half-made town then) before it closes the object runtime under them.
"""

from __future__ import annotations

import asyncio
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rpc.envelopes import error_json
from rpc.errors import RpcError

EVENT_STREAM: Final = b"text/event-stream"
POLL_SECONDS: Final = 0.05
STOPPING: Final = RpcError("SERVICE_UNAVAILABLE", "The server is stopping; retry the call")


class InFlight:
    """How many HTTP calls are running; `wait_idle` until none is."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class GracefulStreams:
    def __init__(self, app: ASGIApp, stopping: asyncio.Event, in_flight: InFlight) -> None:
        self.app = app
        self.stopping = stopping
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight.enter()
        try:
            await self._http(scope, receive, send)
        finally:
            self.in_flight.leave()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = streaming = finished = body_read = False

        async def watched_send(message: Message) -> None:
            nonlocal started, streaming, finished
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers", [])
                streaming = any(k.lower() == b"content-type" and v.startswith(EVENT_STREAM) for k, v in headers)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        async def guarded_receive() -> Message:
            nonlocal body_read
            if not body_read:  # the request body: nothing to wait for but the client
                message = await receive()
                body_read = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            # After the body, receive only waits for the client to leave: an event stream
            # also leaves when the server stops.
            pending = asyncio.ensure_future(receive())
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait({pending, stop}, return_when=asyncio.FIRST_COMPLETED)
                while not pending.done() and not (streaming and not finished):
                    await asyncio.wait({pending}, timeout=POLL_SECONDS)  # stopping: a stream yet?
                if pending.done():
                    return pending.result()
                return {"type": "http.disconnect"}
            finally:
                stop.cancel()
                if not pending.done():
                    pending.cancel()

        try:
            await self.app(scope, guarded_receive, watched_send)
        except asyncio.CancelledError:
            if not self.stopping.is_set() or started:
                raise
            # Cut off by the stop timeout before it answered (what it wrote was undone as it
            # unwound): a clean "retry later" instead of uvicorn's traceback and bare 500.
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": error_json(STOPPING, None)})
            return
        if streaming and not finished and self.stopping.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
