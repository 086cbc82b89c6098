"""tRPC v11 subscriptions over SSE (httpSubscriptionLink), trpc-wire.md §4."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from tests.rpc import conftest
from tests.rpc.conftest import AppServer, wait_for

SSE = {"accept": "text/event-stream"}
CONNECTED = "event: connected\ndata: {}\n\n\n"
RETURN = "event: return\ndata: \n\n\n"


def q(value: Any) -> str:
    return quote(json.dumps(value, separators=(",", ":")), safe="")


def events(text: str) -> list[str]:
    """Split a body into events; each event ends with a blank line plus tRPC's extra newline."""
    return [e + "\n\n\n" for e in text.split("\n\n\n") if e]


def serialized_error(text: str) -> dict[str, Any]:
    last = events(text)[-1]
    assert last.startswith("event: serialized-error\ndata: ")
    shape: dict[str, Any] = json.loads(last.removeprefix("event: serialized-error\ndata: "))
    return shape


def test_finite_subscription_streams_connected_data_and_return(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.ticks?input={q({'n': 3})}", headers=SSE)
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/event-stream"
    assert res.headers["cache-control"] == "no-cache, no-transform"
    assert res.headers["x-accel-buffering"] == "no"
    assert res.headers["vary"] == "trpc-accept, accept"
    assert res.text == (
        CONNECTED + 'data: {"tick":0}\n\n\n' + 'data: {"tick":1}\n\n\n' + 'data: {"tick":2}\n\n\n' + RETURN
    )


def test_any_get_on_a_subscription_path_streams(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.ticks?input={q({'n': 1})}")
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/event-stream"
    assert res.text == CONNECTED + 'data: {"tick":0}\n\n\n' + RETURN


def test_error_during_iteration_is_serialized_error_then_end(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.ticks?input={q({'n': 3, 'failAt': 1})}", headers=SSE)
    assert res.status_code == 200
    assert events(res.text)[:2] == [CONNECTED, 'data: {"tick":0}\n\n\n']
    assert len(events(res.text)) == 3  # no `return` after an error
    assert serialized_error(res.text) == {
        "message": "ticks diverged",
        "code": -32009,
        "data": {"code": "CONFLICT", "httpStatus": 409, "path": "test.ticks"},
    }


def test_unexpected_exception_in_stream_does_not_leak(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.ticks?input={q({'n': 3, 'crashAt': 0})}", headers=SSE)
    error = serialized_error(res.text)
    assert error["data"] == {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500, "path": "test.ticks"}
    assert "secret" not in res.text


def test_validation_error_arrives_inside_the_stream(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.ticks?input={q({'n': 'x'})}", headers=SSE)
    assert res.status_code == 200
    assert events(res.text)[0] == CONNECTED
    assert serialized_error(res.text) == {
        "message": "Expected `int`, got `str` - at `$.n`",
        "code": -32600,
        "data": {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.ticks"},
    }


def test_malformed_input_arrives_inside_the_stream(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.ticks?input={quote('{bad', safe='')}", headers=SSE)
    assert res.status_code == 200
    assert serialized_error(res.text)["data"] == {
        "code": "BAD_REQUEST",
        "httpStatus": 400,
        "path": "test.ticks",
    }


def test_unknown_path_is_plain_json_404(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/no.such.sub?input={q({'a': 1})}", headers=SSE)
    assert res.status_code == 404
    assert res.headers["content-type"] == "application/json"
    assert res.json()["error"]["message"] == 'No procedure found on path "no.such.sub"'


def test_query_path_with_event_stream_accept_answers_plain_json(app_server: AppServer) -> None:
    with app_server.client() as http:
        res = http.get(f"/test.echo?input={q({'text': 'a'})}", headers=SSE)
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/json"
    assert res.json() == {"result": {"data": {"text": "a"}}}


def test_missing_token_is_unauthorized_inside_the_stream(app_server: AppServer) -> None:
    with app_server.client(token=None) as anon:
        res = anon.get("/test.whoamiSub", headers=SSE)
    assert res.status_code == 200
    assert serialized_error(res.text)["data"] == {
        "code": "UNAUTHORIZED",
        "httpStatus": 401,
        "path": "test.whoamiSub",
    }


def test_token_from_connection_params_query_parameter(app_server: AppServer) -> None:
    params = q({"token": app_server.token("user-sse")})
    with app_server.client(token=None) as anon:
        res = anon.get(f"/test.whoamiSub?connectionParams={params}", headers=SSE)
    assert res.text == CONNECTED + 'data: "user-sse"\n\n\n' + RETURN


def test_token_from_authorization_header(app_server: AppServer) -> None:
    with app_server.client(app_server.token("user-hdr")) as http:
        res = http.get("/test.whoamiSub", headers=SSE)
    assert res.text == CONNECTED + 'data: "user-hdr"\n\n\n' + RETURN


def test_invalid_connection_params_shape_is_parse_error(app_server: AppServer) -> None:
    with app_server.client(token=None) as anon:
        res = anon.get(f"/test.whoamiSub?connectionParams={q({'token': 1})}", headers=SSE)
    assert res.status_code == 400
    assert res.json() == {
        "error": {
            "message": "Invalid connection params shape",
            "code": -32700,
            "data": {"code": "PARSE_ERROR", "httpStatus": 400},
        }
    }


def test_client_disconnect_closes_the_subscription(app_server: AppServer) -> None:
    tag = "sse-disconnect"
    seen: list[str] = []
    with (
        app_server.client() as http,
        http.stream("GET", f"/test.forever?input={q({'tag': tag})}", headers=SSE) as res,
    ):
        for line in res.iter_lines():
            seen.append(line)
            if line.startswith("data: {"):
                break
    assert seen[0] == "event: connected"
    assert wait_for(lambda: tag in conftest.FOREVER_CLOSED)


def test_stream_is_flushed_event_by_event(app_server: AppServer) -> None:
    # The first data event must arrive while the subscription is still running.
    tag = "sse-flush"
    with (
        httpx.Client(base_url=app_server.trpc_url, timeout=5) as http,
        http.stream(
            "GET",
            f"/test.forever?input={q({'tag': tag})}",
            headers={**SSE, "authorization": f"Bearer {app_server.token()}"},
        ) as res,
    ):
        received = ""
        for text in res.iter_text():
            received += text
            if received.count('data: {"tick"') >= 2:
                break
    assert received.startswith(CONNECTED + 'data: {"tick":0}\n\n\n')
    assert wait_for(lambda: tag in conftest.FOREVER_CLOSED)
