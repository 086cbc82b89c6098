"""tRPC v11 HTTP adapter: httpLink, httpBatchLink and httpBatchStreamLink wire behaviour
(trpc-wire.md §2–§3), against the real app over a socket."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.rpc.conftest import MAX_BODY_BYTES, AppServer

JSON_HEADERS = {"vary": "trpc-accept, accept", "content-type": "application/json"}


def q(value: Any) -> str:
    """`encodeURIComponent(JSON.stringify(value))`, as the client builds `?input=`."""
    return quote(json.dumps(value, separators=(",", ":")), safe="")


def err(code: str, number: int, status: int, message: str, path: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code, "httpStatus": status}
    if path is not None:
        data["path"] = path
    return {"error": {"message": message, "code": number, "data": data}}


def assert_json_headers(res: httpx.Response) -> None:
    assert res.headers["vary"] == JSON_HEADERS["vary"]
    assert res.headers["content-type"] == JSON_HEADERS["content-type"]


@pytest.fixture
def http(app_server: AppServer) -> httpx.Client:
    return app_server.client()


# ---- httpLink


def test_get_query_answers_result_envelope(http: httpx.Client) -> None:
    res = http.get(f"/test.echo?input={q({'text': 'hé'})}")
    assert res.status_code == 200
    assert_json_headers(res)
    assert res.content == '{"result":{"data":{"text":"hé"}}}'.encode()


def test_get_query_without_input_param_is_undefined_input(http: httpx.Client) -> None:
    res = http.get("/test.optional")
    assert res.json() == {"result": {"data": {"text": "default"}}}
    res = http.get("/test.echo")
    assert res.status_code == 400
    body = res.json()
    assert body["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.echo"}
    assert body["error"]["code"] == -32600


def test_post_mutation_takes_raw_json_body(http: httpx.Client) -> None:
    res = http.post("/test.add", content=b'{"a":2,"b":3}', headers={"content-type": "application/json"})
    assert res.status_code == 200
    assert_json_headers(res)
    assert res.content == b'{"result":{"data":{"sum":5}}}'


def test_post_mutation_with_empty_body_is_undefined_input(http: httpx.Client) -> None:
    res = http.post("/test.add", content=b"", headers={"content-type": "application/json"})
    assert res.status_code == 400
    assert res.json()["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.add"}


def test_validation_failure_is_bad_request_naming_the_field(http: httpx.Client) -> None:
    res = http.get(f"/test.echo?input={q({'text': 5})}")
    assert res.status_code == 400
    assert res.json() == err(
        "BAD_REQUEST", -32600, 400, "Expected `str`, got `int` - at `$.text`", "test.echo"
    )


def test_procedure_error_keeps_code_message_and_path(http: httpx.Client) -> None:
    res = http.get(f"/test.fail?input={q({'kind': 'notFound'})}")
    assert res.status_code == 404
    assert_json_headers(res)
    assert res.content == (
        b'{"error":{"message":"Thing 42 not found","code":-32004,'
        b'"data":{"code":"NOT_FOUND","httpStatus":404,"path":"test.fail"}}}'
    )


def test_error_without_message_uses_the_code_as_message(http: httpx.Client) -> None:
    res = http.get(f"/test.fail?input={q({'kind': 'forbidden'})}")
    assert res.status_code == 403
    assert res.json() == err("FORBIDDEN", -32003, 403, "FORBIDDEN", "test.fail")


def test_unexpected_exception_is_generic_internal_error_without_its_text(http: httpx.Client) -> None:
    res = http.get(f"/test.fail?input={q({'kind': 'crash'})}")
    assert res.status_code == 500
    error = res.json()["error"]
    assert error["code"] == -32603
    assert error["data"] == {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500, "path": "test.fail"}
    assert error["message"].startswith("Internal server error")
    assert "secret" not in res.text and "stack" not in res.text


def test_unencodable_output_is_that_calls_internal_error(http: httpx.Client) -> None:
    res = http.get("/test.unencodable")
    assert res.status_code == 500
    assert res.json()["error"]["data"]["code"] == "INTERNAL_SERVER_ERROR"


def test_missing_token_is_unauthorized_per_call(app_server: AppServer) -> None:
    with app_server.client(token=None) as anon:
        res = anon.get("/test.whoami")
    assert res.status_code == 401
    assert res.json()["error"]["data"] == {"code": "UNAUTHORIZED", "httpStatus": 401, "path": "test.whoami"}
    with app_server.client(app_server.token("user-7")) as authed:
        assert authed.get("/test.whoami").json() == {"result": {"data": "user-7"}}


def test_unknown_path_is_per_call_not_found(http: httpx.Client) -> None:
    res = http.get(f"/no.such.proc?input={q({'a': 1})}")
    assert res.status_code == 404
    assert_json_headers(res)
    assert res.json() == err(
        "NOT_FOUND", -32004, 404, 'No procedure found on path "no.such.proc"', "no.such.proc"
    )
    res = http.post("/no.such.proc", content=b"{}", headers={"content-type": "application/json"})
    assert res.status_code == 404
    assert res.json()["error"]["data"]["path"] == "no.such.proc"


def test_empty_path_is_not_found_with_empty_path(http: httpx.Client) -> None:
    res = http.get("/")
    assert res.status_code == 404
    assert res.json() == err("NOT_FOUND", -32004, 404, 'No procedure found on path ""', "")


def test_percent_encoded_path_is_decoded(http: httpx.Client) -> None:
    res = http.get(f"/test%2Eecho?input={q({'text': 'x'})}")
    assert res.json() == {"result": {"data": {"text": "x"}}}


def test_bad_percent_escape_in_path_is_request_level_bad_request(http: httpx.Client) -> None:
    res = http.get("/test.e%ZZcho")
    assert res.status_code == 400
    assert_json_headers(res)
    assert res.json() == err("BAD_REQUEST", -32600, 400, 'Invalid URL-encoding in path "test.e%ZZcho"', None)


def test_mutation_via_get_is_405_with_allow_post(http: httpx.Client) -> None:
    res = http.get(f"/test.add?input={q({'a': 1, 'b': 2})}")
    assert res.status_code == 405
    assert res.headers["allow"] == "POST"
    assert_json_headers(res)
    assert res.json() == err(
        "METHOD_NOT_SUPPORTED",
        -32005,
        405,
        'Unsupported GET-request to mutation procedure at path "test.add"',
        "test.add",
    )


def test_query_via_post_is_405_with_allow_get(http: httpx.Client) -> None:
    res = http.post("/test.echo", content=b'{"text":"x"}', headers={"content-type": "application/json"})
    assert res.status_code == 405
    assert res.headers["allow"] == "GET"
    assert res.json()["error"]["message"] == 'Unsupported POST-request to query procedure at path "test.echo"'


def test_put_with_json_is_405_naming_the_method(http: httpx.Client) -> None:
    res = http.put("/test.echo", content=b"{}", headers={"content-type": "application/json"})
    assert res.status_code == 405
    assert res.headers["allow"] == "GET"
    assert res.json()["error"]["message"] == 'Unsupported PUT-request to query procedure at path "test.echo"'


def test_post_to_subscription_is_405_allow_get(http: httpx.Client) -> None:
    res = http.post("/test.ticks", content=b'{"n":1}', headers={"content-type": "application/json"})
    assert res.status_code == 405
    assert res.headers["allow"] == "GET"
    assert_json_headers(res)
    assert res.json() == err(
        "METHOD_NOT_SUPPORTED",
        -32005,
        405,
        'Unsupported POST-request to subscription procedure at path "test.ticks"',
        "test.ticks",
    )


def test_malformed_json_body_is_per_call_bad_request(http: httpx.Client) -> None:
    res = http.post("/test.add", content=b'{"a": ', headers={"content-type": "application/json"})
    assert res.status_code == 400
    assert_json_headers(res)
    error = res.json()["error"]
    assert error["code"] == -32600
    assert error["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.add"}
    assert error["message"]  # msgspec's parser message


def test_malformed_json_query_input_is_per_call_bad_request(http: httpx.Client) -> None:
    res = http.get(f"/test.echo?input={quote('{bad', safe='')}")
    assert res.status_code == 400
    assert res.json()["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.echo"}


# ---- content type, OPTIONS, HEAD


@pytest.mark.parametrize(
    ("content_type", "message"),
    [("text/plain", 'Unsupported content-type "text/plain'), (None, "Missing content-type header")],
)
def test_post_without_json_content_type_is_request_level_415(
    http: httpx.Client, content_type: str | None, message: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    for url in ("/test.add", "/test.add,test.add?batch=1"):
        req = http.build_request("POST", url, content=b'{"a":1,"b":2}', headers=headers)
        if content_type is None and "content-type" in req.headers:
            del req.headers["content-type"]
        res = http.send(req)
        assert res.status_code == 415
        assert_json_headers(res)  # unlike upstream, which sends text/plain
        assert res.json() == err("UNSUPPORTED_MEDIA_TYPE", -32015, 415, message, None)  # one object, no path


def test_json_content_type_is_matched_case_insensitively_ignoring_parameters(http: httpx.Client) -> None:
    res = http.post(
        "/test.add", content=b'{"a":1,"b":2}', headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert res.status_code == 200
    assert res.json() == {"result": {"data": {"sum": 3}}}


def test_non_preflight_options_is_415_like_trpc(http: httpx.Client) -> None:
    res = http.options("/test.echo")
    assert res.status_code == 415
    assert res.json() == err("UNSUPPORTED_MEDIA_TYPE", -32015, 415, "Missing content-type header", None)


def test_head_is_204_empty(http: httpx.Client) -> None:
    res = http.head("/test.echo")
    assert res.status_code == 204
    assert res.content == b""


# ---- httpBatchLink


def test_batch_of_two_queries_answers_array_in_order(http: httpx.Client) -> None:
    res = http.get(f"/test.echo,test.echo?batch=1&input={q({'0': {'text': 'a'}, '1': {'text': 'b'}})}")
    assert res.status_code == 200
    assert_json_headers(res)
    assert res.content == b'[{"result":{"data":{"text":"a"}}},{"result":{"data":{"text":"b"}}}]'


def test_batch_of_one_is_still_an_array(http: httpx.Client) -> None:
    res = http.get(f"/test.echo?batch=1&input={q({'0': {'text': 'a'}})}")
    assert res.status_code == 200
    assert res.json() == [{"result": {"data": {"text": "a"}}}]


def test_batch_with_success_and_error_is_207(http: httpx.Client) -> None:
    res = http.get(f"/test.echo,test.fail?batch=1&input={q({'0': {'text': 'a'}, '1': {'kind': 'notFound'}})}")
    assert res.status_code == 207
    assert res.json() == [
        {"result": {"data": {"text": "a"}}},
        err("NOT_FOUND", -32004, 404, "Thing 42 not found", "test.fail"),
    ]


def test_batch_with_the_same_error_everywhere_takes_that_status(http: httpx.Client) -> None:
    both = {"0": {"kind": "notFound"}, "1": {"kind": "notFound"}}
    res = http.get(f"/test.fail,test.fail?batch=1&input={q(both)}")
    assert res.status_code == 404
    assert [item["error"]["data"]["code"] for item in res.json()] == ["NOT_FOUND", "NOT_FOUND"]


def test_batch_with_two_different_errors_is_207(http: httpx.Client) -> None:
    res = http.get(f"/test.fail,test.fail?batch=1&input={q({'0': {'kind': 'notFound'}, '1': {'kind': 5}})}")
    assert res.status_code == 207
    assert [item["error"]["data"]["code"] for item in res.json()] == ["NOT_FOUND", "BAD_REQUEST"]


def test_unknown_path_inside_batch_is_that_items_error(http: httpx.Client) -> None:
    res = http.get(f"/test.echo,nope?batch=1&input={q({'0': {'text': 'a'}, '1': {}})}")
    assert res.status_code == 207
    assert res.json()[1] == err("NOT_FOUND", -32004, 404, 'No procedure found on path "nope"', "nope")


def test_batch_missing_key_is_undefined_input_for_that_call(http: httpx.Client) -> None:
    res = http.get(f"/test.optional,test.optional?batch=1&input={q({'1': {'text': 'given'}})}")
    assert res.status_code == 200
    assert res.json() == [{"result": {"data": {"text": "default"}}}, {"result": {"data": {"text": "given"}}}]


def test_batch_post_mutations(http: httpx.Client) -> None:
    res = http.post(
        "/test.add,test.add?batch=1",
        content=b'{"0":{"a":1,"b":1},"1":{"a":2,"b":2}}',
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 200
    assert res.content == b'[{"result":{"data":{"sum":2}}},{"result":{"data":{"sum":4}}}]'


def test_batch_input_not_an_object_fails_every_call(http: httpx.Client) -> None:
    res = http.post(
        "/test.add,test.add?batch=1", content=b'[{"a":1,"b":1}]', headers={"content-type": "application/json"}
    )
    assert res.status_code == 400
    message = '"input" needs to be an object when doing a batch call'
    assert res.json() == [err("BAD_REQUEST", -32600, 400, message, "test.add")] * 2


def test_malformed_json_in_batch_gives_one_error_per_call(http: httpx.Client) -> None:
    res = http.post(
        "/test.add,test.add?batch=1", content=b'{"0":', headers={"content-type": "application/json"}
    )
    assert res.status_code == 400
    body = res.json()
    assert len(body) == 2
    assert all(
        item["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.add"}
        for item in body
    )


def test_mixed_procedure_types_is_request_level_400(http: httpx.Client) -> None:
    res = http.get(f"/test.echo,test.add?batch=1&input={q({'0': {'text': 'a'}, '1': {'a': 1, 'b': 1}})}")
    assert res.status_code == 400
    assert_json_headers(res)
    assert res.json() == err(
        "BAD_REQUEST", -32600, 400, "Cannot mix procedure types in call: query, mutation", None
    )


def test_batch_over_100_calls_is_request_level_bad_request(http: httpx.Client) -> None:
    res = http.get("/" + ",".join(["test.optional"] * 101) + "?batch=1")
    assert res.status_code == 400
    body = res.json()
    assert body["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400}
    assert http.get("/" + ",".join(["test.optional"] * 100) + "?batch=1").status_code == 200


def test_subscription_inside_a_batch_is_that_calls_error(http: httpx.Client) -> None:
    res = http.get(f"/test.ticks?batch=1&input={q({'0': {'n': 1}})}")
    assert res.status_code == 400
    assert res.json()[0]["error"]["data"] == {"code": "BAD_REQUEST", "httpStatus": 400, "path": "test.ticks"}


def test_batch_calls_run_concurrently(http: httpx.Client) -> None:
    # Each call returns only when all three are inside the procedure at once.
    res = http.get(f"/test.meet,test.meet,test.meet?batch=1&input={q({str(i): {'group': 'http-batch', 'n': 3} for i in range(3)})}")
    assert res.status_code == 200
    assert [item["result"]["data"] for item in res.json()] == ["met"] * 3


# ---- limits


def test_body_over_limit_is_payload_too_large_per_call(http: httpx.Client) -> None:
    big = b'{"a":1,"b":1,"pad":"' + b"x" * MAX_BODY_BYTES + b'"}'
    res = http.post("/test.add", content=big, headers={"content-type": "application/json"})
    assert res.status_code == 413
    assert_json_headers(res)
    error = res.json()["error"]
    assert error["code"] == -32013
    assert error["data"] == {"code": "PAYLOAD_TOO_LARGE", "httpStatus": 413, "path": "test.add"}
    res = http.post("/test.add,test.add?batch=1", content=big, headers={"content-type": "application/json"})
    assert res.status_code == 413
    assert [item["error"]["data"]["path"] for item in res.json()] == ["test.add", "test.add"]


def test_chunked_body_over_limit_is_payload_too_large(http: httpx.Client) -> None:
    # No content-length: the limit must hold while reading, not only on the declared size.
    def chunks() -> Any:
        yield b'{"pad":"'
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    res = http.post("/test.add", content=chunks(), headers={"content-type": "application/json"})
    assert res.status_code == 413
    assert res.json()["error"]["data"]["code"] == "PAYLOAD_TOO_LARGE"


# ---- httpBatchStreamLink (JSON lines)


def decode_jsonl(text: str) -> tuple[dict[str, Any], list[Any], dict[int, Any]]:
    """Resolve tRPC's JSON-lines head/chunk references (jsonl.ts) into each call's final value."""
    lines = [json.loads(line) for line in text.split("\n") if line.strip()]
    head, chunks = lines[0], lines[1:]
    by_id = {chunk[0]: chunk for chunk in chunks}
    assert len(by_id) == len(chunks), "chunk ids are unique"

    def resolve(encoded: list[Any]) -> Any:
        [[data], *slots] = encoded
        for key, kind, chunk_id in slots:
            assert kind == 0  # promise
            _, status, value = by_id[chunk_id]
            assert status == 0  # fulfilled
            resolved = resolve(value)
            if key is None:
                return resolved
            data[key] = resolved
        return data

    results = {int(k): resolve(v) for k, v in head.items()}
    return head, chunks, results


def stream_get(http: httpx.Client, url: str, header: str = "trpc-accept") -> httpx.Response:
    return http.get(url, headers={header: "application/jsonl"})


def test_jsonl_stream_has_head_line_then_chunks(http: httpx.Client) -> None:
    res = stream_get(
        http, f"/test.echo,test.echo?batch=1&input={q({'0': {'text': 'a'}, '1': {'text': 'b'}})}"
    )
    assert res.status_code == 200
    assert_json_headers(res)
    assert res.text.endswith("\n")
    _, chunks, results = decode_jsonl(res.text)
    assert res.text.split("\n")[0] == '{"0":[[0],[null,0,0]],"1":[[0],[null,0,1]]}'
    assert all(isinstance(c, list) and isinstance(c[0], int) and c[1] == 0 for c in chunks)
    assert results == {0: {"result": {"data": {"text": "a"}}}, 1: {"result": {"data": {"text": "b"}}}}


def test_jsonl_nests_result_and_data_like_the_node_server(http: httpx.Client) -> None:
    res = stream_get(http, f"/test.echo?batch=1&input={q({'0': {'text': 'a'}})}")
    assert res.text == (
        '{"0":[[0],[null,0,0]]}\n'
        '[0,0,[[{"result":0}],["result",0,1]]]\n'
        '[1,0,[[{"data":0}],["data",0,2]]]\n'
        '[2,0,[[{"text":"a"}]]]\n'
    )


def test_jsonl_errors_are_fulfilled_error_chunks_with_status_200(http: httpx.Client) -> None:
    res = stream_get(
        http, f"/test.echo,test.fail?batch=1&input={q({'0': {'text': 'a'}, '1': {'kind': 'notFound'}})}"
    )
    assert res.status_code == 200
    _, chunks, results = decode_jsonl(res.text)
    assert results[1] == err("NOT_FOUND", -32004, 404, "Thing 42 not found", "test.fail")
    assert [1, 0, [[results[1]]]] in chunks


def test_jsonl_chunks_arrive_in_completion_order(http: httpx.Client) -> None:
    res = stream_get(http, f"/test.slow,test.slow?batch=1&input={q({'0': {'ms': 200}, '1': {'ms': 0}})}")
    _, chunks, results = decode_jsonl(res.text)
    assert chunks[0][0] == 1  # call 1 finished first
    assert results == {0: {"result": {"data": {"sleptMs": 200}}}, 1: {"result": {"data": {"sleptMs": 0}}}}


def test_jsonl_accepts_the_accept_header_and_post(http: httpx.Client) -> None:
    res = http.post(
        "/test.add?batch=1",
        content=b'{"0":{"a":1,"b":2}}',
        headers={"content-type": "application/json", "accept": "application/jsonl"},
    )
    assert res.status_code == 200
    assert decode_jsonl(res.text)[2] == {0: {"result": {"data": {"sum": 3}}}}


def test_jsonl_without_batch_is_request_level_400(http: httpx.Client) -> None:
    res = stream_get(http, f"/test.echo?input={q({'text': 'a'})}")
    assert res.status_code == 400
    assert res.json() == err(
        "BAD_REQUEST", -32600, 400, "Streaming requests must be batched (you can do a batch of 1)", None
    )


def test_jsonl_request_level_errors_are_plain_json(http: httpx.Client) -> None:
    res = http.post(
        "/test.add?batch=1",
        content=b"{}",
        headers={"content-type": "text/plain", "trpc-accept": "application/jsonl"},
    )
    assert res.status_code == 415
    assert res.json()["error"]["data"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "httpStatus": 415}
