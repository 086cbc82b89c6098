"""POST /rpc against the real app: JSON-RPC 2.0 (single, batch, notifications, errors, limits)
and the tRPC-style envelope."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import httpx
import pytest

from tests.rpc_jsonrpc.conftest import MAX_BODY_BYTES, LiveApp, wait_until

JSON = {"content-type": "application/json"}


def rpc(client: httpx.Client, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/rpc", content=content, headers=JSON)


def call(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        request["params"] = params
    return request


def notification(method: str, params: Any = None) -> dict[str, Any]:
    request = call(method, params)
    del request["id"]
    return request


# --- single calls ------------------------------------------------------------------------


def test_single_call_returns_result_with_id_and_compact_json(client: httpx.Client) -> None:
    response = rpc(client, call("test.echo", {"text": "héllo"}, id=1))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == '{"jsonrpc":"2.0","result":{"text":"héllo"},"id":1}'.encode()


def test_params_as_array_of_one_object_is_the_input(client: httpx.Client) -> None:
    response = rpc(client, call("test.add", [{"a": 2, "b": 3}], id=2))
    assert response.json() == {"jsonrpc": "2.0", "result": 5, "id": 2}


def test_absent_params_call_a_procedure_without_input(client: httpx.Client) -> None:
    response = rpc(client, call("test.whoami", id=3))
    assert response.json() == {"jsonrpc": "2.0", "result": "user-1", "id": 3}


def test_superjson_wrapped_input_is_accepted(client: httpx.Client) -> None:
    response = rpc(client, call("test.echo", {"json": {"text": "wrapped"}}))
    assert response.json()["result"] == {"text": "wrapped"}


@pytest.mark.parametrize("request_id", ["abc", 7, 0, -3, 2.5, None])
def test_id_is_echoed(client: httpx.Client, request_id: Any) -> None:
    response = rpc(client, call("test.add", {"a": 1, "b": 1}, id=request_id))
    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "result": 2, "id": request_id}


def test_missing_token_is_unauthorized_with_trpc_code(live: LiveApp) -> None:
    with live.client(auth=False) as anonymous:
        body = rpc(anonymous, call("test.whoami", id=4)).json()
    assert body["id"] == 4
    assert body["error"]["code"] == -32001
    assert body["error"]["data"] == {"code": "UNAUTHORIZED", "httpStatus": 401, "path": "test.whoami"}


# --- errors ------------------------------------------------------------------------------


def test_unknown_method_is_method_not_found(client: httpx.Client) -> None:
    body = rpc(client, call("test.nope", id=5)).json()
    assert body["id"] == 5
    assert body["error"]["code"] == -32601
    assert body["error"]["data"]["path"] == "test.nope"


def test_subscription_is_method_not_found(client: httpx.Client) -> None:
    body = rpc(client, call("test.ticks", id=6)).json()
    assert body["error"]["code"] == -32601


def test_invalid_params_name_the_field(client: httpx.Client) -> None:
    body = rpc(client, call("test.echo", {"text": 5}, id=7)).json()
    assert body == {
        "jsonrpc": "2.0",
        "error": {
            "message": "Expected `str`, got `int` - at `$.text`",
            "code": -32602,
            "data": {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.echo"},
        },
        "id": 7,
    }


def test_missing_required_input_is_invalid_params(client: httpx.Client) -> None:
    body = rpc(client, call("test.echo", id=8)).json()
    assert body["error"]["code"] == -32602
    body = rpc(client, call("test.echo", {}, id=8)).json()
    assert body["error"]["code"] == -32602
    assert "text" in body["error"]["message"]


def test_params_array_of_two_is_invalid_params(client: httpx.Client) -> None:
    body = rpc(client, call("test.add", [1, 2], id=9)).json()
    assert body["error"]["code"] == -32602
    assert body["id"] == 9


def test_procedure_error_uses_trpc_code_and_data(client: httpx.Client) -> None:
    body = rpc(client, call("test.notFound", id=10)).json()
    assert body == {
        "jsonrpc": "2.0",
        "error": {
            "message": "Town t-1 not found",
            "code": -32004,
            "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "test.notFound"},
        },
        "id": 10,
    }


def test_bad_request_raised_by_a_procedure_is_not_invalid_params(client: httpx.Client) -> None:
    body = rpc(client, call("test.refuse", id=11)).json()
    assert body["error"]["code"] == -32600
    assert body["error"]["message"] == "The procedure refuses this"
    assert body["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.refuse"}


def test_internal_error_does_not_leak_and_is_logged_with_a_request_id(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    response = rpc(client, call("test.crash", id=12))
    assert response.status_code == 200
    assert b"secret detail XYZ" not in response.content
    error = response.json()["error"]
    assert error["code"] == -32603
    assert error["data"] == {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500, "path": "test.crash"}
    match = re.fullmatch(r"Internal server error \(request ([0-9a-f]+)\)", error["message"])
    assert match, error["message"]
    request_id = match.group(1)

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if request_id in r.getMessage()]

    assert wait_until(lambda: bool(logged()))
    (record,) = logged()
    assert "secret detail XYZ" in caplog.text
    assert record.exc_info is not None and "secret detail XYZ" in str(record.exc_info[1])
    # the cause appears only on that record, which carries the request id
    leaking = [
        r
        for r in caplog.records
        if r is not record and "secret detail XYZ" in (r.getMessage() + str(r.exc_info))
    ]
    assert leaking == []


def test_unencodable_result_is_an_internal_error(client: httpx.Client) -> None:
    body = rpc(client, call("test.unencodable", id=13)).json()
    assert body["id"] == 13
    assert body["error"]["code"] == -32603


def test_invalid_json_is_a_parse_error_with_null_id(client: httpx.Client) -> None:
    response = rpc(client, b'{"jsonrpc": "2.0", "method": "test.echo", "params": ')
    assert response.status_code == 200
    body = response.json()
    assert body["error"]["code"] == -32700
    assert body["id"] is None
    assert body["jsonrpc"] == "2.0"


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe\x00", b"[1,2", b'{"a":1} {"b":2}', b"1e999", b"NaN"])
def test_malformed_bodies_are_parse_errors(client: httpx.Client, raw: bytes) -> None:
    response = rpc(client, raw)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == -32700


@pytest.mark.parametrize("body", [5, "text", None, True])
def test_non_object_request_is_invalid_request(client: httpx.Client, body: Any) -> None:
    response = rpc(client, body)
    assert response.json()["error"]["code"] == -32600
    assert response.json()["id"] is None


@pytest.mark.parametrize(
    "request_body",
    [
        {"jsonrpc": "1.0", "method": "test.whoami", "id": 1},
        {"method": "test.whoami", "id": 1},
        {"jsonrpc": "2.0", "method": 5, "id": 1},
        {"jsonrpc": "2.0", "method": "test.whoami", "params": "x", "id": 1},
    ],
)
def test_malformed_request_is_invalid_request_with_its_id(client: httpx.Client, request_body: Any) -> None:
    body = rpc(client, request_body).json()
    assert body["error"]["code"] == -32600
    assert body["id"] == 1


@pytest.mark.parametrize("bad_id", [True, {"a": 1}, [1]])
def test_invalid_id_is_invalid_request_with_null_id(client: httpx.Client, bad_id: Any) -> None:
    body = rpc(client, {"jsonrpc": "2.0", "method": "test.whoami", "id": bad_id}).json()
    assert body["error"]["code"] == -32600
    assert body["id"] is None


# --- batches and notifications -----------------------------------------------------------


def test_batch_answers_in_order_with_per_item_errors(client: httpx.Client) -> None:
    response = rpc(
        client,
        [
            call("test.echo", {"text": "a"}, id="first"),
            {"foo": "bar"},
            5,
            call("test.nope", id="third"),
            call("test.add", {"a": 1, "b": 2}, id="last"),
        ],
    )
    assert response.status_code == 200
    replies = response.json()
    assert [r["id"] for r in replies] == ["first", None, None, "third", "last"]
    assert replies[0]["result"] == {"text": "a"}
    assert replies[1]["error"]["code"] == -32600
    assert replies[2]["error"]["code"] == -32600
    assert replies[3]["error"]["code"] == -32601
    assert replies[4]["result"] == 3
    assert all(r["jsonrpc"] == "2.0" for r in replies)


def test_batch_items_run_concurrently(client: httpx.Client) -> None:
    # Each item returns only when all five are inside the procedure at once.
    batch = [call("test.meet", {"group": "jsonrpc-batch", "n": 5}, id=i) for i in range(5)]
    replies = rpc(client, batch).json()
    assert [r["result"] for r in replies] == ["met"] * 5


def test_notification_runs_and_gets_no_response(client: httpx.Client) -> None:
    value = uuid.uuid4().hex
    response = rpc(client, notification("test.record", {"value": value}))
    assert response.status_code == 204
    assert response.content == b""
    recorded = rpc(client, call("test.recorded", id=1)).json()["result"]
    assert value in recorded


def test_batch_of_only_notifications_gets_204_and_all_run(client: httpx.Client) -> None:
    values = [uuid.uuid4().hex for _ in range(3)]
    response = rpc(client, [notification("test.record", {"value": v}) for v in values])
    assert response.status_code == 204
    assert response.content == b""
    recorded = rpc(client, call("test.recorded")).json()["result"]
    assert all(v in recorded for v in values)


def test_notifications_in_a_batch_are_left_out_of_the_answer(client: httpx.Client) -> None:
    value = uuid.uuid4().hex
    replies = rpc(
        client,
        [
            notification("test.record", {"value": value}),
            call("test.add", {"a": 2, "b": 2}, id=1),
            notification("test.crash"),
            notification("test.nope"),
        ],
    ).json()
    assert replies == [{"jsonrpc": "2.0", "result": 4, "id": 1}]


def test_failing_notification_gets_no_response(client: httpx.Client) -> None:
    assert rpc(client, notification("test.echo", {"text": 1})).status_code == 204
    assert rpc(client, notification("test.nope")).status_code == 204


def test_empty_batch_is_one_invalid_request(client: httpx.Client) -> None:
    body = rpc(client, []).json()
    assert isinstance(body, dict)
    assert body["error"]["code"] == -32600
    assert body["id"] is None


def test_batch_of_invalid_values_gets_one_error_each(client: httpx.Client) -> None:
    replies = rpc(client, [1, 2, 3]).json()
    assert [r["error"]["code"] for r in replies] == [-32600] * 3


def test_batch_over_100_calls_is_one_invalid_request(client: httpx.Client) -> None:
    body = rpc(client, [call("test.whoami", id=i) for i in range(101)]).json()
    assert isinstance(body, dict)
    assert body["error"]["code"] == -32600
    assert "100" in body["error"]["message"]
    assert len(rpc(client, [call("test.whoami", id=i) for i in range(100)]).json()) == 100


# --- limits and content type -------------------------------------------------------------


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    big = call("test.echo", {"text": "x" * (MAX_BODY_BYTES + 10)})
    response = rpc(client, big)
    assert response.status_code == 413
    body = response.json()
    assert body["error"]["code"] == -32013
    assert body["error"]["data"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["id"] is None


def test_chunked_body_over_the_limit_is_413_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    response = client.post("/rpc", content=chunks(), headers=JSON)
    assert response.status_code == 413


def test_body_just_under_the_limit_is_served(client: httpx.Client) -> None:
    request = call("test.echo", {"text": ""})
    overhead = len(json.dumps(request).encode())
    request["params"]["text"] = "y" * (MAX_BODY_BYTES - overhead)
    response = rpc(client, request)
    assert response.status_code == 200
    assert len(response.json()["result"]["text"]) == MAX_BODY_BYTES - overhead


def test_deep_nesting_is_refused_without_crashing(client: httpx.Client) -> None:
    for depth in (100, 5_000):  # the second is past msgspec's own recursion limit
        nested = b"[" * depth + b"]" * depth
        response = rpc(client, b'{"jsonrpc":"2.0","method":"test.echo","id":1,"params":' + nested + b"}")
        assert response.status_code == 200
        assert response.json()["error"]["code"] in (-32600, -32700)
    assert rpc(client, call("test.whoami")).status_code == 200


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
def test_non_json_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/rpc", content=json.dumps(call("test.whoami")).encode(), headers=headers)
    assert response.status_code == 415
    body = response.json()
    assert body["error"] == {
        "message": "Unsupported content-type",
        "code": -32600,
        "data": {"code": "UNSUPPORTED_MEDIA_TYPE", "httpStatus": 415},
    }


def test_json_content_type_is_case_insensitive_with_parameters(client: httpx.Client) -> None:
    response = client.post(
        "/rpc",
        content=json.dumps(call("test.whoami")).encode(),
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert response.json()["result"] == "user-1"


# --- tRPC-style envelope -----------------------------------------------------------------


def test_trpc_envelope_query_returns_data_result(client: httpx.Client) -> None:
    response = rpc(
        client, {"id": 1, "method": "query", "params": {"path": "test.echo", "input": {"text": "t"}}}
    )
    assert response.status_code == 200
    assert response.content == b'{"id":1,"result":{"type":"data","data":{"text":"t"}}}'


def test_trpc_envelope_echoes_jsonrpc_only_when_sent(client: httpx.Client) -> None:
    envelope = {
        "id": "m",
        "jsonrpc": "2.0",
        "method": "mutation",
        "params": {"path": "test.add", "input": {"a": 1, "b": 4}},
    }
    assert rpc(client, envelope).json() == {
        "id": "m",
        "jsonrpc": "2.0",
        "result": {"type": "data", "data": 5},
    }


def test_trpc_envelope_without_input_and_with_wrapped_input(client: httpx.Client) -> None:
    assert (
        rpc(client, {"id": 1, "method": "query", "params": {"path": "test.whoami"}}).json()["result"]["data"]
        == "user-1"
    )
    wrapped = {"id": 2, "method": "query", "params": {"path": "test.echo", "input": {"json": {"text": "w"}}}}
    assert rpc(client, wrapped).json()["result"]["data"] == {"text": "w"}


def test_trpc_envelope_error_uses_trpc_shape(client: httpx.Client) -> None:
    body = rpc(client, {"id": 2, "method": "query", "params": {"path": "test.notFound"}}).json()
    assert body == {
        "id": 2,
        "error": {
            "message": "Town t-1 not found",
            "code": -32004,
            "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "test.notFound"},
        },
    }


def test_trpc_envelope_invalid_input_is_bad_request(client: httpx.Client) -> None:
    body = rpc(
        client, {"id": 3, "method": "query", "params": {"path": "test.echo", "input": {"text": 1}}}
    ).json()
    assert body["error"]["code"] == -32600
    assert body["error"]["message"] == "Expected `str`, got `int` - at `$.text`"
    assert body["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.echo"}


def test_trpc_envelope_wrong_kind_is_not_found(client: httpx.Client) -> None:
    body = rpc(
        client, {"id": 4, "method": "mutation", "params": {"path": "test.echo", "input": {"text": "x"}}}
    ).json()
    assert body["id"] == 4
    assert body["error"]["code"] == -32004
    assert body["error"]["message"] == 'No "mutation"-procedure on path "test.echo"'


def test_trpc_envelope_internal_error_does_not_leak(client: httpx.Client) -> None:
    response = rpc(client, {"id": 5, "method": "query", "params": {"path": "test.crash"}})
    assert b"secret detail XYZ" not in response.content
    assert response.json()["error"]["data"]["code"] == "INTERNAL_SERVER_ERROR"


def test_trpc_envelope_without_id_is_rejected(client: httpx.Client) -> None:
    body = rpc(client, {"method": "query", "params": {"path": "test.whoami"}}).json()
    assert body["id"] is None
    assert body["error"]["data"]["code"] == "PARSE_ERROR"


def test_batch_mixes_trpc_envelopes_and_jsonrpc_calls(client: httpx.Client) -> None:
    replies = rpc(
        client,
        [
            {"id": 1, "method": "query", "params": {"path": "test.whoami"}},
            call("test.add", {"a": 1, "b": 1}, id=2),
            {"id": 3, "method": "subscription", "params": {"path": "test.ticks"}},
        ],
    ).json()
    assert replies[0] == {"id": 1, "result": {"type": "data", "data": "user-1"}}
    assert replies[1] == {"jsonrpc": "2.0", "result": 2, "id": 2}
    assert replies[2]["id"] == 3 and replies[2]["error"]["data"]["code"] == "METHOD_NOT_SUPPORTED"


# --- robustness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","method":"test.echo","params":[null],"id":1}',
        b'{"jsonrpc":"2.0","method":"test.echo","params":{"text":"\\ud800"},"id":1}',
        b'{"jsonrpc":"2.0","method":"rpc.discover","id":1}',
        b'{"jsonrpc":"2.0","method":"","id":123456789012345678901234567890}',
        b'{"id":{},"method":"query","params":{"path":5}}',
        b'{"id":1,"method":"query","params":[]}',
        b'{"id":1,"method":"subscription.stop"}',
        b'[[], {}, [[]], null, "x"]',
        b'{"jsonrpc":"2.0","method":"test.echo","params":{"text":"a","extra":{"deep":[1,2,{"x":null}]}},"id":1}',
    ],
)
def test_odd_requests_never_crash_the_handler(client: httpx.Client, raw: bytes) -> None:
    response = rpc(client, raw)
    assert response.status_code in (200, 204)
    if response.status_code == 200:
        response.json()
    assert rpc(client, call("test.whoami")).status_code == 200


def test_options_without_preflight_headers_reaches_the_handler(client: httpx.Client) -> None:
    response = client.options("/rpc")
    assert response.status_code == 204
    assert response.headers["allow"] == "POST, OPTIONS"
