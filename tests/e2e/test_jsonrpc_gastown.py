"""Raw JSON-RPC 2.0 envelopes to POST /rpc against the real gastown procedures."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.server import RunningServer


@pytest.fixture
def rpc(server: RunningServer) -> httpx.Client:
    return server.client(server.token(f"rpc-{uuid.uuid4().hex[:6]}"))


def post(client: httpx.Client, payload: object) -> httpx.Response:
    return client.post("/rpc", json=payload)


def test_single_call_and_id_echo(rpc: httpx.Client) -> None:
    created = post(rpc, {"jsonrpc": "2.0", "id": "c1", "method": "gastown.createTown", "params": {"name": "via rpc"}})
    assert created.status_code == 200
    body = created.json()
    assert (body["jsonrpc"], body["id"]) == ("2.0", "c1")
    town = body["result"]
    got = post(rpc, {"jsonrpc": "2.0", "id": 7, "method": "gastown.getTown", "params": {"townId": town["id"]}}).json()
    assert got == {"jsonrpc": "2.0", "result": town, "id": 7}


def test_batch_with_an_invalid_item_answers_each_item(rpc: httpx.Client) -> None:
    replies = post(
        rpc,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "gastown.listTowns"},
            {"jsonrpc": "1.0", "id": 2, "method": "gastown.listTowns"},
            42,
            {"jsonrpc": "2.0", "id": 3, "method": "gastown.getTown", "params": {"townId": str(uuid.uuid4())}},
        ],
    ).json()
    assert [r.get("id") for r in replies] == [1, 2, None, 3]
    assert replies[0]["result"] == []
    assert replies[1]["error"]["code"] == -32600
    assert replies[2]["error"]["code"] == -32600
    assert replies[3]["error"]["code"] == -32004
    assert replies[3]["error"]["data"] == {"code": "NOT_FOUND", "httpStatus": 404, "path": "gastown.getTown"}


def test_notification_runs_and_gets_no_answer(rpc: httpx.Client) -> None:
    silent = post(rpc, {"jsonrpc": "2.0", "method": "gastown.createTown", "params": {"name": "quietly"}})
    assert (silent.status_code, silent.content) == (204, b"")
    towns = post(rpc, {"jsonrpc": "2.0", "id": 1, "method": "gastown.listTowns"}).json()["result"]
    assert [t["name"] for t in towns] == ["quietly"]


def test_unknown_method_and_bad_params(rpc: httpx.Client) -> None:
    unknown = post(rpc, {"jsonrpc": "2.0", "id": 1, "method": "gastown.noSuchThing"}).json()
    assert unknown["error"]["code"] == -32601
    bad = post(rpc, {"jsonrpc": "2.0", "id": 2, "method": "gastown.createTown", "params": {"name": ""}}).json()
    assert bad["error"]["code"] == -32602
    assert "$.name" in bad["error"]["message"]
    assert bad["id"] == 2


def test_parse_error_and_auth(server: RunningServer) -> None:
    anonymous = server.client(None)
    garbage = anonymous.post("/rpc", content=b"{not json", headers={"content-type": "application/json"}).json()
    assert garbage["error"]["code"] == -32700 and garbage["id"] is None
    denied = post(anonymous, {"jsonrpc": "2.0", "id": 1, "method": "gastown.listTowns"}).json()
    assert denied["error"]["code"] == -32001
    assert denied["error"]["data"]["code"] == "UNAUTHORIZED"
