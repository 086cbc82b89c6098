"""CORS for the browser front end, on `/trpc*` and `/rpc` only (rpc.md §1).

Allowed origins are an exact list; dev mode also allows any `http://localhost[:port]` and
`http://127.0.0.1[:port]`. A preflight from an allowed origin is answered here (204); one from
any other origin gets 204 with no CORS headers, so the browser refuses the call. Actual requests
from an allowed origin get `access-control-allow-origin` (the origin itself, never `*`,
because credentials are allowed) and `vary: Origin`; others pass untouched.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS: Final = "GET, POST, OPTIONS"
ALLOW_HEADERS: Final = "Content-Type, Authorization"
MAX_AGE: Final = "3600"

_DEV_ORIGIN: Final = re.compile(r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?")


def is_cors_path(path: str) -> bool:
    return path == "/rpc" or path == "/trpc" or path.startswith("/trpc/")


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...], dev_mode: bool) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.dev_mode = dev_mode

    def allows(self, origin: str) -> bool:
        if origin in self.origins:
            return True
        return self.dev_mode and _DEV_ORIGIN.fullmatch(origin) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_cors_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, send)
            return
        if not self.allows(origin):
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["access-control-allow-origin"] = origin
                response_headers["access-control-allow-credentials"] = "true"
                _add_vary_origin(response_headers)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
        if self.allows(origin):
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _add_vary_origin(headers: MutableHeaders) -> None:
    """Append `Origin` to whatever `vary` the app set (all of its values kept, no duplicate)."""
    values = headers.getlist("vary")
    tokens = [token.strip().lower() for value in values for token in value.split(",")]
    if "*" in tokens or "origin" in tokens:
        return
    headers["vary"] = ", ".join([*values, "Origin"])
