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
