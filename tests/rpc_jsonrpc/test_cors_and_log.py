"""CORS on /trpc* and /rpc, and the access log (real app; a few unit cases with a stub ASGI app)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from rpc.cors import CorsMiddleware
from rpc.request_log import RequestLogMiddleware
from tests.rpc_jsonrpc.conftest import APP_ORIGIN, LiveApp, wait_until

PREFLIGHT_HEADERS = {
    "access-control-allow-origin": APP_ORIGIN,
    "access-control-allow-credentials": "true",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Content-Type, Authorization",
    "access-control-max-age": "3600",
}


def preflight(client: httpx.Client, path: str, origin: str) -> httpx.Response:
    return client.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization",
        },
    )


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def whoami(client: httpx.Client, origin: str) -> httpx.Response:
    body = json.dumps({"jsonrpc": "2.0", "method": "test.whoami", "id": 1})
    return client.post("/rpc", content=body, headers={"content-type": "application/json", "origin": origin})


# --- CORS against the real app -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/rpc", "/trpc/test.whoami", "/trpc"])
def test_preflight_from_an_allowed_origin(live: LiveApp, path: str) -> None:
    with live.client(auth=False) as client:
        response = preflight(client, path, APP_ORIGIN)
    assert response.status_code == 204
    assert cors_headers(response) == PREFLIGHT_HEADERS
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://localhost:5173", "null", "https://app.example.evil"]
)
def test_preflight_from_another_origin_gets_no_cors_headers(live: LiveApp, origin: str) -> None:
    with live.client(auth=False) as client:
        response = preflight(client, "/rpc", origin)
    assert response.status_code == 204
    assert cors_headers(response) == {}


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:5173", "http://127.0.0.1:3000", "http://localhost", "http://127.0.0.1", APP_ORIGIN],
)
def test_dev_mode_allows_localhost_origins(live_dev: LiveApp, origin: str) -> None:
    with live_dev.client(auth=False) as client:
        response = preflight(client, "/trpc/test.whoami", origin)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    "origin",
    ["http://localhost.evil.com", "https://localhost:5173", "http://localhost:5173/x", "http://127.0.0.2:80"],
)
def test_dev_mode_still_refuses_other_origins(live_dev: LiveApp, origin: str) -> None:
    with live_dev.client(auth=False) as client:
        response = preflight(client, "/rpc", origin)
    assert cors_headers(response) == {}


def test_actual_request_from_an_allowed_origin_gets_cors_headers(live: LiveApp) -> None:
    with live.client() as client:
        response = whoami(client, APP_ORIGIN)
    assert response.json()["result"] == "user-1"
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]


def test_actual_request_from_another_origin_is_untouched(live: LiveApp) -> None:
    with live.client() as client:
        response = whoami(client, "https://evil.example")
    assert response.json()["result"] == "user-1"
    assert cors_headers(response) == {}


def test_healthz_is_not_under_cors(live: LiveApp) -> None:
    with live.client(auth=False) as client:
        assert cors_headers(client.get("/healthz", headers={"origin": APP_ORIGIN})) == {}
        assert cors_headers(preflight(client, "/healthz", APP_ORIGIN)) == {}


# --- CORS unit cases (stub app) ----------------------------------------------------------


async def _stub_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"vary", b"trpc-accept, accept"), (b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


def _run(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _scope(kind: str, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Scope:
    scope: Scope = {
        "type": kind,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"connectionParams=%7B%22token%22%3A%22tok-SECRET%22%7D",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("10.1.2.3", 5555),
        "server": ("127.0.0.1", 8787),
        "scheme": "http" if kind == "http" else "ws",
    }
    if kind == "http":
        scope["method"] = method
    return scope


def test_vary_origin_is_appended_to_the_apps_vary_header() -> None:
    app = CorsMiddleware(_stub_app, origins=(APP_ORIGIN,), dev_mode=False)
    start = _run(app, _scope("http", "/trpc/x", headers={"origin": APP_ORIGIN}))[0]
    headers = [(k.decode(), v.decode()) for k, v in start["headers"]]
    assert [v for k, v in headers if k == "vary"] == ["trpc-accept, accept, Origin"]
    assert ("access-control-allow-origin", APP_ORIGIN) in headers


def test_websocket_scopes_pass_through_cors_untouched() -> None:
    app = CorsMiddleware(_stub_app, origins=(APP_ORIGIN,), dev_mode=False)
    sent = _run(app, _scope("websocket", "/trpc", headers={"origin": "https://evil.example"}))
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1000}]


# --- access log --------------------------------------------------------------------------


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gastown.access"]


def test_access_log_has_one_line_without_query_or_headers(
    live: LiveApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gastown.access")
    with live.client() as client:
        token = client.headers["authorization"].split()[1]
        client.get("/healthz", params={"connectionParams": '{"token":"tok-SECRET"}'})
        whoami(client, APP_ORIGIN)
    assert wait_until(lambda: len(_access_lines(caplog)) >= 2)
    lines = _access_lines(caplog)
    health = [line for line in lines if "/healthz" in line]
    assert len(health) == 1
    assert health[0].startswith("GET /healthz 200 ")
    assert health[0].endswith(" 127.0.0.1")
    assert any(line.startswith("POST /rpc 200 ") for line in lines)
    text = "\n".join(lines)
    assert "tok-SECRET" not in text and "connectionParams" not in text and "?" not in text
    assert token not in caplog.text


def test_access_log_line_for_a_websocket_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gastown.access")
    _run(RequestLogMiddleware(_stub_app), _scope("websocket", "/trpc"))
    (line,) = _access_lines(caplog)
    assert line.startswith("WS /trpc 101 ")
    assert line.endswith(" 10.1.2.3")
    assert "tok-SECRET" not in line


def test_access_log_escapes_control_characters_in_the_path(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gastown.access")
    _run(RequestLogMiddleware(_stub_app), _scope("http", "/trpc/a\nFAKE 200"))
    (line,) = _access_lines(caplog)
    assert "\n" not in line and "\\x0a" in line


def test_access_log_records_500_when_the_app_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.INFO, logger="gastown.access")
    with pytest.raises(RuntimeError):
        _run(RequestLogMiddleware(broken), _scope("http", "/rpc", method="POST"))
    (line,) = _access_lines(caplog)
    assert line.startswith("POST /rpc 500 ")
