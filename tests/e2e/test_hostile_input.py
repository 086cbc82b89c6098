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
def test_jsonrpc_method_that_is_not_a_string_is_an_invalid_request(
    server: RunningServer, method: Any
) -> None:
    reply = _rpc(server, {"jsonrpc": "2.0", "id": 7, "method": method})
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"]["code"] == "BAD_REQUEST"
    assert reply["id"] == 7


@pytest.mark.parametrize("method", [{"a": 1}, ["query"]])
def test_trpc_style_envelope_with_an_object_method_is_a_bad_request(
    server: RunningServer, method: Any
) -> None:
    reply = _rpc(server, {"id": 1, "method": method, "params": {"path": "gastown.getTown"}})
    assert reply["error"]["data"]["code"] == "BAD_REQUEST"
    batch = _rpc(server, [{"id": 1, "method": method}, {"jsonrpc": "2.0", "id": 2, "method": method}])
    assert [r["error"]["code"] for r in batch] == [-32600, -32600]


def test_trpc_style_envelope_never_echoes_a_bad_jsonrpc_value(server: RunningServer) -> None:
    garbage = "1.0<script>alert(1)</script>"
    reply = _rpc(
        server, {"id": 1, "jsonrpc": garbage, "method": "query", "params": {"path": "gastown.getTown"}}
    )
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


def _unbounded_fields(tp: Any, where: str, seen: set[Any]) -> list[str]:
    """Every int without bounds inside SQLite's int64 and every str without a max length."""
    import msgspec.inspect as mi

    from town.bounds import SQLITE_INT_MAX, SQLITE_INT_MIN

    if isinstance(tp, mi.IntType):
        low = tp.ge if tp.ge is not None else tp.gt
        high = tp.le if tp.le is not None else tp.lt
        ok = low is not None and high is not None and SQLITE_INT_MIN <= low and high <= SQLITE_INT_MAX
        return [] if ok else [where]
    if isinstance(tp, mi.StrType):
        return [] if tp.max_length is not None else [where]
    if isinstance(tp, mi.StructType):
        if tp.cls in seen:
            return []
        seen.add(tp.cls)
        return [bad for f in tp.fields for bad in _unbounded_fields(f.type, f"{where}.{f.name}", seen)]
    if isinstance(tp, mi.UnionType):
        return [bad for t in tp.types for bad in _unbounded_fields(t, where, seen)]
    if isinstance(tp, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return [bad for bad in _unbounded_fields(tp.item_type, f"{where}[]", seen)]
    if isinstance(tp, mi.DictType):
        return _unbounded_fields(tp.key_type, f"{where}{{key}}", seen) + _unbounded_fields(
            tp.value_type, f"{where}{{}}", seen
        )
    return []


def test_every_int_and_str_a_client_can_send_is_bounded() -> None:
    import msgspec.inspect as mi

    from rpc.procedures import all_procedures

    unbounded = [
        bad
        for proc in all_procedures()
        if proc.input is not None
        for bad in _unbounded_fields(mi.type_info(proc.input), proc.path, set())
    ]
    assert unbounded == []


def test_integer_far_out_of_range_is_a_bad_request_on_every_transport(server: RunningServer) -> None:
    import asyncio
    import json

    import websockets

    token = server.token("bounds-user")
    with server.client(token) as client:
        town = client.post("/trpc/gastown.createTown", json={"name": "bounds"}).json()["result"]["data"]
        rig = client.post(
            "/trpc/gastown.createRig",
            json={"townId": town["id"], "name": "r", "gitUrl": "https://example.com/r.git"},
        ).json()["result"]["data"]
        for offset in (2**64, 2**63, -(2**70), 10**40):
            value = {"rigId": rig["id"], "townId": town["id"], "offset": offset}
            got = client.get("/trpc/gastown.listBeads", params={"input": json.dumps(value)})
            assert got.status_code == 400, got.text
            rpc = client.post(
                "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "gastown.listBeads", "params": value}
            )
            assert rpc.json()["error"]["data"]["code"] == "BAD_REQUEST"
        config = {"townId": town["id"], "config": {"refinery": {"auto_merge_delay_minutes": 2**64}}}
        assert client.post("/trpc/gastown.updateTownConfig", json=config).status_code == 400
        rig_config = {"rigId": rig["id"], "config": {"max_concurrent_polecats": 2**63}}
        assert client.post("/trpc/gastown.updateRigConfig", json=rig_config).status_code == 400
        assert (
            client.post(
                "/trpc/gastown.createBead", json={"rigId": rig["id"], "title": "x" * 200_000}
            ).status_code
            == 400
        )
        assert (
            client.get(
                "/trpc/gastown.listBeads", params={"input": json.dumps({"rigId": rig["id"]})}
            ).status_code
            == 200
        )

    async def over_ws() -> dict[str, Any]:
        async with websockets.connect(server.ws_url + "?connectionParams=1") as ws:
            await ws.send(json.dumps({"method": "connectionParams", "data": {"token": token}}))
            frame = {
                "id": 1,
                "method": "query",
                "params": {"path": "gastown.listBeads", "input": {"rigId": rig["id"], "offset": 2**64}},
            }
            await ws.send(json.dumps(frame))
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    assert asyncio.run(over_ws())["error"]["data"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("GET", "/trpc/gastown.get%0ATown", {}),
        ("GET", "/trpc/gastown.get%0ATown", {"accept": "text/event-stream"}),
        ("POST", "/trpc/gastown.create%0D%0ATown", {"content-type": "application/json"}),
        ("GET", "/trpc/gastown.getTown,gastown.get%0ATown?batch=1", {}),
        ("GET", "/trpc/%3Cscript%3E", {}),
    ],
)
def test_procedure_path_outside_the_path_policy_is_a_json_not_found_that_does_not_echo_it(
    server: RunningServer, method: str, url: str, headers: dict[str, str]
) -> None:
    with server.client(server.token("path-user")) as client:
        response = client.request(method, url, headers=headers, content=b"{}" if method == "POST" else None)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    errors = [item["error"] for item in body] if isinstance(body, list) else [body["error"]]
    bad = errors[-1]
    assert bad["data"]["code"] == "NOT_FOUND"
    assert "path" not in bad["data"]
    assert "\n" not in response.text and "\\n" not in response.text and "<script" not in response.text


@pytest.mark.parametrize(
    ("method", "url", "status", "key"),
    [
        ("GET", "/rpc/x", 404, "NOT_FOUND"),
        ("GET", "/health/x", 404, "NOT_FOUND"),
        ("GET", "/trpc%0A/x", 404, "NOT_FOUND"),
        ("POST", "/nothing", 404, "NOT_FOUND"),
        ("GET", "/rpc", 405, "METHOD_NOT_SUPPORTED"),
        ("POST", "/healthz", 405, "METHOD_NOT_SUPPORTED"),
    ],
)
def test_routing_errors_answer_a_trpc_error_envelope(
    server: RunningServer, method: str, url: str, status: int, key: str
) -> None:
    with server.client(None) as client:
        response = client.request(method, url)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["data"] == {"code": key, "httpStatus": status}


def test_invalid_utf8_in_a_websocket_text_frame_closes_1007_without_a_traceback(
    server: RunningServer,
) -> None:
    import asyncio

    import websockets

    async def send_bad_frames() -> list[int | None]:
        codes = []
        for _ in range(3):
            async with websockets.connect(server.ws_url) as ws:
                await ws.send(b'{"id":1,"method":"query","params":{"path":"\xff"}}', text=True)
                with pytest.raises(websockets.ConnectionClosedError):
                    await asyncio.wait_for(ws.recv(), 10)
                codes.append(ws.close_code)
        return codes

    before = len(server.log_text())
    assert asyncio.run(send_bad_frames()) == [1007, 1007, 1007]
    with server.client(None) as client:
        assert client.get("/healthz").status_code == 200
    log = server.log_text()[before:]
    assert "Traceback" not in log
    assert log.count("not UTF-8") == 3
