"""Regression tests for the wrong answers the fuzzer found (issue 9), through the real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server import RunningServer


def _rpc(server: RunningServer, body: Any, token: str | None = None) -> Any:
    with server.client(token) as client:
        response = client.post("/rpc", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("method", [{"a": 1}, ["query"], [], {}])
def test_jsonrpc_method_that_is_not_a_string_is_an_invalid_request(server: RunningServer, method: Any) -> None:
    reply = _rpc(server, {"jsonrpc": "2.0", "id": 7, "method": method})
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"]["code"] == "BAD_REQUEST"
    assert reply["id"] == 7


@pytest.mark.parametrize("method", [{"a": 1}, ["query"]])
def test_trpc_style_envelope_with_an_object_method_is_a_bad_request(server: RunningServer, method: Any) -> None:
    reply = _rpc(server, {"id": 1, "method": method, "params": {"path": "gastown.getTown"}})
    assert reply["error"]["data"]["code"] == "BAD_REQUEST"
    batch = _rpc(server, [{"id": 1, "method": method}, {"jsonrpc": "2.0", "id": 2, "method": method}])
    assert [r["error"]["code"] for r in batch] == [-32600, -32600]


def test_trpc_style_envelope_never_echoes_a_bad_jsonrpc_value(server: RunningServer) -> None:
    garbage = "1.0<script>alert(1)</script>"
    reply = _rpc(server, {"id": 1, "jsonrpc": garbage, "method": "query", "params": {"path": "gastown.getTown"}})
    assert "jsonrpc" not in reply
    assert reply["error"]["data"]["code"] == "PARSE_ERROR"
    assert "script" not in str(reply)


def _signed(secret: str, payload_json: bytes) -> str:
    """A validly signed HS256 token around raw payload bytes (JSON escapes kept as sent)."""
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(payload_json)
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


BAD_CLAIMS = [
    b'{"kiloUserId":"\\ud800","gastownAccess":true}',
    b'{"kiloUserId":"a\\u0000b","gastownAccess":true}',
    b'{"kiloUserId":"' + b"x" * 300 + b'","gastownAccess":true}',
    b'{"kiloUserId":"u","gastownAccess":true,"orgMemberships":[{"orgId":"\\udfff","role":"owner"}]}',
    b'{"kiloUserId":"u","gastownAccess":true,"orgMemberships":[{"orgId":"a/b","role":"owner"}]}',
    b'{"kiloUserId":"u","gastownAccess":true,"exp":1e400}',
]


@pytest.mark.parametrize("payload", BAD_CLAIMS)
def test_signed_token_with_invalid_claims_is_unauthorized_on_every_transport(
    server: RunningServer, payload: bytes
) -> None:
    import asyncio
    import json

    import websockets

    token = _signed(server.secret, payload)
    for _ in range(2):  # the second time would hit the token cache if the first had filled it
        with server.client(token) as client:
            response = client.get("/trpc/gastown.listTowns")
            assert response.status_code == 401, response.text
            assert response.json()["error"]["data"]["code"] == "UNAUTHORIZED"
            rpc = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "gastown.listTowns"}).json()
            assert rpc["error"]["data"]["code"] == "UNAUTHORIZED"

    async def over_ws() -> dict[str, Any]:
        async with websockets.connect(server.ws_url + "?connectionParams=1") as ws:
            await ws.send(json.dumps({"method": "connectionParams", "data": {"token": token}}))
            await ws.send(json.dumps({"id": 1, "method": "query", "params": {"path": "gastown.listTowns"}}))
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    frame = asyncio.run(over_ws())
    assert frame["error"]["data"]["code"] == "UNAUTHORIZED"

