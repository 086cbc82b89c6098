"""The real app (rpc.app.create_app) under uvicorn in a background thread, with test procedures.

The server runs in this process, so `caplog` sees its log records (access lines, the cause of
internal errors).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from rpc.auth import mint_token
from rpc.errors import RpcError
from rpc.router import CallContext, Procedure, Router
from rpc.settings import Settings
from tests.inprocess import MeetInput, Rendezvous, app_settings, serving

SECRET = "jsonrpc-test-secret-0123456789abcdef"
APP_ORIGIN = "https://app.example"
MAX_BODY_BYTES = 16 * 1024
SLOW_SECONDS = 0.3


class EchoInput(msgspec.Struct):
    text: str


class AddInput(msgspec.Struct):
    a: int
    b: int


class RecordInput(msgspec.Struct):
    value: str


class AllowAll:
    async def check(self, ctx: CallContext, params: Any) -> None:
        pass


@dataclass
class Recorder:
    """Side effects of `test.record`, readable through `test.recorded`."""

    values: list[str] = field(default_factory=list)


def build_test_router(recorder: Recorder) -> Router:
    allow = AllowAll()

    async def echo(ctx: CallContext, params: EchoInput) -> EchoInput:
        return params

    async def add(ctx: CallContext, params: AddInput) -> int:
        return params.a + params.b

    async def record(ctx: CallContext, params: RecordInput) -> None:
        recorder.values.append(params.value)

    async def recorded(ctx: CallContext, params: None) -> list[str]:
        return list(recorder.values)

    async def whoami(ctx: CallContext, params: None) -> str:
        return ctx.caller.user_id

    async def not_found(ctx: CallContext, params: None) -> None:
        raise RpcError("NOT_FOUND", "Town t-1 not found")

    async def refuse(ctx: CallContext, params: None) -> None:
        raise RpcError("BAD_REQUEST", "The procedure refuses this")

    async def crash(ctx: CallContext, params: None) -> None:
        raise RuntimeError("secret detail XYZ")

    async def slow(ctx: CallContext, params: None) -> str:
        await asyncio.sleep(SLOW_SECONDS)
        return "done"

    async def unencodable(ctx: CallContext, params: None) -> object:
        return object()

    async def ticks(ctx: CallContext, params: None) -> AsyncIterator[int]:
        yield 1

    return Router(
        [
            Procedure("test.echo", "query", EchoInput, allow, echo),
            Procedure("test.add", "mutation", AddInput, allow, add),
            Procedure("test.record", "mutation", RecordInput, allow, record),
            Procedure("test.recorded", "query", None, allow, recorded),
            Procedure("test.whoami", "query", None, allow, whoami),
            Procedure("test.notFound", "query", None, allow, not_found),
            Procedure("test.refuse", "mutation", None, allow, refuse),
            Procedure("test.crash", "query", None, allow, crash),
            Procedure("test.slow", "query", None, allow, slow),
            Procedure("test.meet", "query", MeetInput, allow, Rendezvous().meet),
            Procedure("test.unencodable", "query", None, allow, unencodable),
            Procedure("test.ticks", "subscription", None, allow, ticks),
        ]
    )


def make_settings(data_dir: Path, *, dev_mode: bool) -> Settings:
    return app_settings(
        data_dir, secret=SECRET, max_body_bytes=MAX_BODY_BYTES, dev_mode=dev_mode, cors_origins=(APP_ORIGIN,), log_level="info"
    )


@dataclass
class LiveApp:
    base_url: str
    recorder: Recorder

    def token(self, user_id: str = "user-1") -> str:
        return mint_token(SECRET, user_id)

    def client(self, *, auth: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token()}"} if auth else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


def _live(tmp_path_factory: pytest.TempPathFactory, *, dev_mode: bool) -> Iterator[LiveApp]:
    recorder = Recorder()
    data_dir = tmp_path_factory.mktemp("jsonrpc-data")
    with serving(make_settings(data_dir, dev_mode=dev_mode), build_test_router(recorder)) as port:
        yield LiveApp(base_url=f"http://127.0.0.1:{port}", recorder=recorder)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """Production-like app: exact CORS origin list, no dev mode."""
    yield from _live(tmp_path_factory, dev_mode=False)


@pytest.fixture(scope="session")
def live_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """Dev-mode app: localhost origins allowed as well."""
    yield from _live(tmp_path_factory, dev_mode=True)


@pytest.fixture
def client(live: LiveApp) -> Iterator[httpx.Client]:
    with live.client() as c:
        yield c


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll: the server logs after the response is sent, so a record can trail the reply."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
