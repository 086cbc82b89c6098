"""The ASGI app: routes, middleware and the lifespan that opens and closes the object runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from dos.fork import ForkService
from dos.git_tokens import GitTokenProvider
from dos.backend import open_runtime
from rpc.auth import TokenCache, mint_token
from rpc.cors import CorsMiddleware
from rpc.envelopes import JSON_HEADERS, error_json
from rpc.errors import TRPC_CODES, RpcError
from rpc.graceful import GracefulStreams, InFlight
from rpc.jsonrpc import handle_jsonrpc
from rpc.procedures import build_router
from rpc.request_log import RequestLogMiddleware
from rpc.router import Router
from rpc.services import Services
from rpc.settings import Settings
from rpc.trpc_http import METHODS as TRPC_HTTP_METHODS
from rpc.trpc_http import TrpcHttpShortcut, handle_trpc_http
from rpc.trpc_ws import handle_trpc_ws
from rpc.web import serve_web_app

VERSION = "0.1.0"
log = logging.getLogger("gastown")


async def healthz(_: Request) -> Response:
    return JSONResponse({"ok": True, "version": VERSION})


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


_KEY_BY_STATUS = {status: key for key, (_, status) in reversed(list(TRPC_CODES.items()))}


async def http_error(_: Request, exc: Exception) -> Response:
    """Routing errors (no route, wrong method) as the tRPC error envelope, never plain text."""
    assert isinstance(exc, HTTPException)
    key = _KEY_BY_STATUS.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_SERVER_ERROR")
    headers = {**JSON_HEADERS, **(exc.headers or {})}
    return Response(error_json(RpcError(key, exc.detail), None), status_code=exc.status_code, headers=headers)


def crash_point(step: str | None):  # type: ignore[no-untyped-def]
    """Test-only fault injection (GASTOWN_TEST_FAULT=<step>): die like a power cut at that step."""
    if step is None:
        return lambda _: None

    def maybe_die(name: str) -> None:
        if name == step:
            log.warning("GASTOWN_TEST_FAULT: killing the process at fork step %s", name)
            os.kill(os.getpid(), signal.SIGKILL)

    return maybe_die


def create_app(settings: Settings, router: Router | None = None) -> Starlette:
    stopping = asyncio.Event()  # set by rpc/serve.py when a graceful stop begins
    in_flight = InFlight()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = open_runtime(settings.data_dir)  # GASTOWN_RUNTIME: local (default) or ray
        forks = ForkService(
            runtime,
            GitTokenProvider(settings.git_token_service_url),
            lambda user_id: mint_token(settings.secret, user_id),
            crash_point(settings.fault_inject),
        )
        services = Services(
            settings=settings,
            runtime=runtime,
            router=router or build_router(),
            forks=forks,
            tokens=TokenCache(settings.secret),
        )
        app.state.services = services
        from rpc.startup import on_startup

        await on_startup(services)
        try:
            yield
        finally:
            # Calls that uvicorn cancelled at its stop timeout are still unwinding (a fork
            # removing its half-made town): let them use the runtime before it closes.
            if not await in_flight.wait_idle(5):
                log.warning("closing with %d call(s) still running", in_flight.count)
            await runtime.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/rpc", handle_jsonrpc, methods=["POST", "OPTIONS"]),
        WebSocketRoute("/trpc", handle_trpc_ws),
        WebSocketRoute("/trpc/", handle_trpc_ws),
        Route("/trpc/{path:path}", handle_trpc_http, methods=list(TRPC_HTTP_METHODS)),
    ]
    middleware = [
        Middleware(GracefulStreams, stopping=stopping, in_flight=in_flight),
        Middleware(RequestLogMiddleware),
        Middleware(CorsMiddleware, origins=settings.cors_origins, dev_mode=settings.dev_mode),
        Middleware(TrpcHttpShortcut),
    ]
    app = Starlette(
        routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.stopping = stopping
    serve_web_app(app, settings.web_dir)  # `/`: the web app, for paths no route takes
    return app
