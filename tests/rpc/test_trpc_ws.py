"""tRPC v11 over WebSocket (wsLink frames), trpc-wire.md §5, with a raw `websockets` client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.rpc import conftest
from tests.rpc.conftest import MAX_BODY_BYTES, AppServer, wait_for


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=15))


class Socket:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    async def send(self, frame: Any) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv_raw(self, timeout: float = 3) -> str:
        data = await asyncio.wait_for(self.conn.recv(), timeout)
        assert isinstance(data, str), "replies are text frames"
        return data

    async def recv(self, timeout: float = 3) -> Any:
        return json.loads(await self.recv_raw(timeout))

    async def recv_n(self, n: int) -> list[Any]:
        return [await self.recv() for _ in range(n)]

    async def assert_nothing_pending(self) -> None:
        """Frames are answered in order of readiness; a PING round trip proves nothing else was sent."""
        await self.send("PING")
        assert await self.recv_raw() == "PONG"


@asynccontextmanager
async def socket(
    server: AppServer,
    *,
    token: str | None = "default",
    params: dict[str, Any] | None = None,
    header: bool = False,
) -> AsyncIterator[Socket]:
    """Open /trpc; by default authenticate like wsLink: `?connectionParams=1` + the first frame."""
    if token == "default":
        token = server.token()
    url = server.ws_url
    headers = {}
    if header and token:
        headers["Authorization"] = f"Bearer {token}"
    elif token or params is not None:
        url += "?connectionParams=1"
    async with connect(url, additional_headers=headers) as conn:
        sock = Socket(conn)
        if "connectionParams=1" in url:
            await sock.send(
                {"method": "connectionParams", "data": params if params is not None else {"token": token}}
            )
        yield sock


def parse_error(message: str) -> dict[str, Any]:
    return {
        "id": None,
        "error": {"message": message, "code": -32700, "data": {"code": "PARSE_ERROR", "httpStatus": 400}},
    }


def query(id_: Any, path: str, input_: Any = None, method: str = "query") -> dict[str, Any]:
    params: dict[str, Any] = {"path": path}
    if input_ is not None:
        params["input"] = input_
    return {"id": id_, "method": method, "params": params}


# ---- queries and mutations


def test_query_answers_data_result(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.echo", {"text": "hé"}))
            assert await ws.recv_raw() == '{"id":1,"result":{"type":"data","data":{"text":"hé"}}}'

    run(scenario)


def test_mutation_answers_data_result(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(7, "test.add", {"a": 1, "b": 2}, method="mutation"))
            assert await ws.recv() == {"id": 7, "result": {"type": "data", "data": {"sum": 3}}}

    run(scenario)


def test_jsonrpc_is_echoed_only_when_sent(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(
                {"id": "abc", "jsonrpc": "2.0", "method": "query", "params": {"path": "test.whoami"}}
            )
            assert (
                await ws.recv_raw() == '{"id":"abc","jsonrpc":"2.0","result":{"type":"data","data":"user-1"}}'
            )
            await ws.send({"id": 2, "jsonrpc": "1.0", "method": "query", "params": {"path": "test.whoami"}})
            assert await ws.recv() == parse_error("Must be JSONRPC 2.0")

    run(scenario)


def test_array_frame_gets_one_reply_frame_per_message(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send([query(1, "test.echo", {"text": "a"}), query(2, "test.fail", {"kind": "notFound"})])
            replies = {r["id"]: r for r in await ws.recv_n(2)}
            assert replies[1] == {"id": 1, "result": {"type": "data", "data": {"text": "a"}}}
            assert replies[2] == {
                "id": 2,
                "error": {
                    "message": "Thing 42 not found",
                    "code": -32004,
                    "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "test.fail"},
                },
            }
            await ws.assert_nothing_pending()

    run(scenario)


def test_calls_on_one_socket_run_concurrently(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.slow", {"ms": 400}))
            await ws.send(query(2, "test.slow", {"ms": 0}))
            first, second = await ws.recv_n(2)
            assert (first["id"], second["id"]) == (2, 1)

    run(scenario)


def test_unknown_path_and_wrong_kind_are_not_found(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "nope", {"a": 1}))
            assert await ws.recv() == {
                "id": 1,
                "error": {
                    "message": 'No "query"-procedure on path "nope"',
                    "code": -32004,
                    "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "nope"},
                },
            }
            await ws.send(query(2, "test.add", {"a": 1, "b": 1}))
            reply = await ws.recv()
            assert reply["error"]["message"] == 'No "query"-procedure on path "test.add"'
            await ws.send(query(3, "test.echo", {"text": "a"}, method="subscription"))
            reply = await ws.recv()
            assert reply["error"]["message"] == 'No "subscription"-procedure on path "test.echo"'

    run(scenario)


def test_errors_do_not_leak_exception_text(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.fail", {"kind": "crash"}))
            raw = await ws.recv_raw()
            assert "secret" not in raw
            error = json.loads(raw)["error"]
            assert error["data"] == {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500, "path": "test.fail"}

    run(scenario)


def test_validation_error_is_bad_request(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.echo", {"text": 1}))
            assert (await ws.recv())["error"] == {
                "message": "Expected `str`, got `int` - at `$.text`",
                "code": -32600,
                "data": {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.echo"},
            }

    run(scenario)


# ---- whole-frame parse errors


def test_malformed_frames_are_parse_errors_with_null_id(app_server: AppServer) -> None:
    cases: list[tuple[Any, str]] = [
        ({"id": None, "method": "query", "params": {"path": "test.whoami"}}, "`id` is required"),
        ({"method": "query", "params": {"path": "test.whoami"}}, "Invalid request id"),
        ({"id": 3, "method": "frobnicate", "params": {"path": "test.whoami"}}, "Invalid procedure type"),
        ({"id": 4, "method": "query"}, "Not an object"),
        ({"id": 5, "method": "query", "params": {"path": 5}}, "Invalid string"),
        ([1], "Not an object"),
        ({"id": True, "method": "query", "params": {"path": "x"}}, "Invalid request id"),
    ]

    async def scenario() -> None:
        async with socket(app_server) as ws:
            for frame, message in cases:
                await ws.send(frame)
                assert await ws.recv() == parse_error(message), frame
            await ws.send("{bad json")
            reply = await ws.recv()
            assert reply["id"] is None
            assert reply["error"]["code"] == -32700
            assert reply["error"]["data"] == {"code": "PARSE_ERROR", "httpStatus": 400}

    run(scenario)


def test_one_invalid_element_fails_the_whole_array(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send([query(1, "test.echo", {"text": "a"}), {"id": 2, "method": "nope"}])
            assert await ws.recv() == parse_error("Invalid procedure type")
            await ws.assert_nothing_pending()  # the valid element did not run

    run(scenario)


def test_ping_is_answered_with_pong(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send("PING")
            assert await ws.recv_raw() == "PONG"

    run(scenario)


# ---- subscriptions


def test_subscription_frames_started_data_stopped(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.ticks", {"n": 2}, method="subscription"))
            assert [await ws.recv_raw() for _ in range(4)] == [
                '{"id":1,"result":{"type":"started"}}',
                '{"id":1,"result":{"type":"data","data":{"tick":0}}}',
                '{"id":1,"result":{"type":"data","data":{"tick":1}}}',
                '{"id":1,"result":{"type":"stopped"}}',
            ]
            # The client sends a stop after `stopped`: ignored silently.
            await ws.send({"id": 1, "method": "subscription.stop"})
            await ws.assert_nothing_pending()

    run(scenario)


def test_subscription_stop_ends_it_with_stopped(app_server: AppServer) -> None:
    tag = "ws-stop"

    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.forever", {"tag": tag}, method="subscription"))
            assert await ws.recv() == {"id": 1, "result": {"type": "started"}}
            assert (await ws.recv())["result"]["type"] == "data"
            await ws.send({"id": 1, "method": "subscription.stop"})
            while (frame := await ws.recv())["result"]["type"] == "data":
                pass
            assert frame == {"id": 1, "result": {"type": "stopped"}}
            assert wait_for(lambda: tag in conftest.FOREVER_CLOSED)

    run(scenario)


def test_stop_for_unknown_id_gets_no_reply(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send({"id": 99, "method": "subscription.stop"})
            await ws.assert_nothing_pending()

    run(scenario)


def test_error_mid_subscription_sends_error_then_stopped(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.ticks", {"n": 3, "failAt": 1}, method="subscription"))
            assert await ws.recv_n(4) == [
                {"id": 1, "result": {"type": "started"}},
                {"id": 1, "result": {"type": "data", "data": {"tick": 0}}},
                {
                    "id": 1,
                    "error": {
                        "message": "ticks diverged",
                        "code": -32009,
                        "data": {"code": "CONFLICT", "httpStatus": 409, "path": "test.ticks"},
                    },
                },
                {"id": 1, "result": {"type": "stopped"}},
            ]

    run(scenario)


def test_error_before_subscription_starts_is_a_lone_error(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.ticks", {"n": "x"}, method="subscription"))
            reply = await ws.recv()
            assert reply["id"] == 1 and reply["error"]["data"]["code"] == "BAD_REQUEST"
            await ws.assert_nothing_pending()  # no started, no stopped

    run(scenario)


def test_duplicate_active_subscription_id_is_bad_request(app_server: AppServer) -> None:
    tag = "ws-duplicate"

    async def scenario() -> None:
        async with socket(app_server) as ws:
            sub = query(1, "test.forever", {"tag": tag}, method="subscription")
            await ws.send(sub)
            assert (await ws.recv())["result"]["type"] == "started"
            await ws.send(sub)
            while "error" not in (frame := await ws.recv()):
                assert frame["result"]["type"] == "data"  # the first one keeps running
            assert frame == {
                "id": 1,
                "error": {
                    "message": "Duplicate id 1",
                    "code": -32600,
                    "data": {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.forever"},
                },
            }
            assert (await ws.recv())["result"]["type"] == "data"
            await ws.send({"id": 1, "method": "subscription.stop"})

    run(scenario)


def test_disconnect_cancels_subscriptions(app_server: AppServer) -> None:
    tag = "ws-disconnect"

    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.forever", {"tag": tag}, method="subscription"))
            await ws.recv_n(2)
        assert wait_for(lambda: tag in conftest.FOREVER_CLOSED)

    run(scenario)


def test_calls_in_flight_at_disconnect_still_finish(app_server: AppServer) -> None:
    tag = "ws-in-flight"

    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(query(1, "test.slow", {"ms": 200, "tag": tag}))
            await ws.assert_nothing_pending()  # the call is running when the socket closes
        assert tag not in conftest.SLOW_FINISHED
        assert wait_for(lambda: tag in conftest.SLOW_FINISHED)

    run(scenario)


# ---- authentication


def test_connection_params_token_authenticates_calls(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server, token=app_server.token("user-cp")) as ws:
            await ws.send(query(1, "test.whoami"))
            assert await ws.recv() == {"id": 1, "result": {"type": "data", "data": "user-cp"}}

    run(scenario)


def test_upgrade_authorization_header_authenticates_calls(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server, token=app_server.token("user-hdr"), header=True) as ws:
            await ws.send(query(1, "test.whoami"))
            assert await ws.recv() == {"id": 1, "result": {"type": "data", "data": "user-hdr"}}

    run(scenario)


def test_missing_token_is_unauthorized_per_call(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server, token=None) as ws:
            await ws.send(query(1, "test.whoami"))
            reply = await ws.recv()
            assert reply["error"]["data"] == {
                "code": "UNAUTHORIZED",
                "httpStatus": 401,
                "path": "test.whoami",
            }
            await ws.send(query(2, "test.echo", {"text": "still open"}))
            assert (await ws.recv())["id"] == 2

    run(scenario)


def test_invalid_connection_params_shape_is_rejected_and_closed(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server, params={"n": 1}) as ws:
            assert await ws.recv() == parse_error("Invalid connection params shape")
            try:
                await ws.recv_raw()
                raise AssertionError("socket should be closed")
            except ConnectionClosed:
                pass

    run(scenario)


def test_connection_params_frame_without_the_url_flag_is_invalid_request_id(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server, token=app_server.token(), header=True) as ws:
            await ws.send({"method": "connectionParams", "data": {"token": "x"}})
            assert await ws.recv() == parse_error("Invalid request id")

    run(scenario)


# ---- limits


def test_frame_over_the_size_limit_is_rejected(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send(json.dumps(query(1, "test.echo", {"text": "x" * MAX_BODY_BYTES})))
            reply = await ws.recv()
            assert reply["id"] is None
            assert reply["error"]["data"] == {"code": "PAYLOAD_TOO_LARGE", "httpStatus": 413}
            await ws.send(query(2, "test.echo", {"text": "ok"}))
            assert (await ws.recv())["id"] == 2

    run(scenario)


def test_too_many_in_flight_calls_is_too_many_requests(app_server: AppServer) -> None:
    async def scenario() -> None:
        async with socket(app_server) as ws:
            await ws.send([query(i, "test.slow", {"ms": 300}) for i in range(1, 102)])
            first = await ws.recv()
            assert first["id"] == 101
            assert first["error"]["data"] == {
                "code": "TOO_MANY_REQUESTS",
                "httpStatus": 429,
                "path": "test.slow",
            }
            replies = await ws.recv_n(100)
            assert sorted(r["id"] for r in replies) == list(range(1, 101))

    run(scenario)
