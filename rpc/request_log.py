"""One access-log line per HTTP request and per WebSocket connection.

Only the method, the path, the status, the duration and the client host are logged: never
headers (bearer tokens), bodies, or the query string (SSE carries `connectionParams`, and with
it the token, in the query).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("gastown.access")

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        is_ws = scope["type"] == "websocket"
        status = 0
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = int(message["status"])
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == 0:
                status = 403  # closed before the handshake completed: the upgrade was refused
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            status = status or 500
            raise
        except BaseException:  # cancelled (shutdown, client gone): log it, then let it unwind
            status = status or 499
            raise
        finally:
            log.info(
                "%s %s %d %.1fms %s",
                "WS" if is_ws else scope.get("method", "-"),
                _printable(scope.get("path", "")),
                status,
                (time.perf_counter() - started) * 1000,
                _client_host(scope),
            )


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _printable(path: str) -> str:
    """The path with control characters escaped (it is percent-decoded: `%0a` is a newline)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", path)


class ClientErrorTraceback(logging.Filter):
    """Keeps uvicorn from logging a traceback for what a client sent wrong.

    uvicorn's sans-I/O WebSocket protocol closes a text frame that is not UTF-8 correctly (1007)
    but logs it with `logger.exception`, a traceback per frame: a client's error, so it becomes
    one short warning line, without the traceback.
    """

    CLIENT_ERRORS: Final = frozenset({"Invalid UTF-8 sequence received from client."})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in self.CLIENT_ERRORS:
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "WebSocket client sent a text frame that is not UTF-8 (closed with 1007)"
        return True


def quiet_client_errors() -> None:
    """Install the filter on uvicorn's error logger (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ClientErrorTraceback) for f in logger.filters):
        logger.addFilter(ClientErrorTraceback())
