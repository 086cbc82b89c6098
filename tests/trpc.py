"""A tiny tRPC-over-HTTP caller for tests (plain httpx; the real @trpc/client runs in tests/node)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx


class TrpcError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.code: str = body["error"]["data"]["code"]
        self.message: str = body["error"]["message"]
        super().__init__(f"{status} {self.code}: {self.message}")


def _unwrap(response: httpx.Response) -> Any:
    body = response.json()
    if "error" in body:
        raise TrpcError(response.status_code, body)
    assert response.status_code == 200, response.text
    return body["result"]["data"]


def query(client: httpx.Client, path: str, input: Any = None) -> Any:
    url = f"/trpc/gastown.{path}"
    if input is not None:
        url += "?input=" + quote(json.dumps(input))
    return _unwrap(client.get(url))


def mutate(client: httpx.Client, path: str, input: Any = None) -> Any:
    content = b"" if input is None else json.dumps(input).encode()
    return _unwrap(client.post(f"/trpc/gastown.{path}", content=content, headers={"content-type": "application/json"}))


def error_of(fn: Any, *args: Any) -> TrpcError:
    try:
        fn(*args)
    except TrpcError as exc:
        return exc
    raise AssertionError("expected a tRPC error")
