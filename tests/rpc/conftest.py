"""The real app (`rpc.app.create_app`) under uvicorn in a background thread, with a test-only
router, so the tRPC adapters are exercised over real sockets without any town logic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import pytest

from rpc.auth import mint_token
from rpc.errors import RpcError
from rpc.router import CallContext, Procedure, Router
from rpc.settings import Settings
from tests.inprocess import MeetInput, Rendezvous, app_settings, serving

SECRET = "trpc-adapter-test-secret-0123456789abcdef"
MAX_BODY_BYTES = 64 * 1024

# Which `test.forever` subscriptions were closed (the handler's `finally` ran), by tag.
FOREVER_CLOSED: set[str] = set()
# Which tagged `test.slow` calls ran to the end.
SLOW_FINISHED: set[str] = set()


class AllowAll:
    async def check(self, ctx: CallContext, params: Any) -> None:
        pass


class EchoInput(msgspec.Struct):
    text: str


class OptionalInput(msgspec.Struct):
    text: str = "default"


class AddInput(msgspec.Struct):
    a: int
    b: int


class FailInput(msgspec.Struct):
    kind: Literal["notFound", "forbidden", "crash"]


class SlowInput(msgspec.Struct):
    ms: int
    tag: str | None = None


class TicksInput(msgspec.Struct):
    n: int
    failAt: int | None = None
    crashAt: int | None = None


class ForeverInput(msgspec.Struct):
    tag: str


class Echoed(msgspec.Struct):
    text: str


async def echo(ctx: CallContext, params: EchoInput) -> Echoed:
    return Echoed(text=params.text)


async def optional(ctx: CallContext, params: OptionalInput) -> dict[str, str]:
    return {"text": params.text}


async def whoami(ctx: CallContext, params: None) -> str:
    return ctx.caller.user_id


async def add(ctx: CallContext, params: AddInput) -> dict[str, int]:
    return {"sum": params.a + params.b}


async def fail(ctx: CallContext, params: FailInput) -> None:
    if params.kind == "notFound":
        raise RpcError("NOT_FOUND", "Thing 42 not found")
    if params.kind == "forbidden":
        raise RpcError("FORBIDDEN")
    raise RuntimeError("secret detail")


async def slow(ctx: CallContext, params: SlowInput) -> dict[str, int]:
    await asyncio.sleep(params.ms / 1000)
    if params.tag:
        SLOW_FINISHED.add(params.tag)
    return {"sleptMs": params.ms}


async def unencodable(ctx: CallContext, params: None) -> Any:
    return {"value": object()}


async def ticks(ctx: CallContext, params: TicksInput) -> AsyncIterator[dict[str, int]]:
    for i in range(params.n):
        if params.failAt == i:
            raise RpcError("CONFLICT", "ticks diverged")
        if params.crashAt == i:
            raise RuntimeError("secret detail")
        yield {"tick": i}
        await asyncio.sleep(0.005)


async def forever(ctx: CallContext, params: ForeverInput) -> AsyncIterator[dict[str, int]]:
    i = 0
    try:
        while True:
            yield {"tick": i}
            i += 1
            await asyncio.sleep(0.02)
    finally:
        FOREVER_CLOSED.add(params.tag)


async def whoami_sub(ctx: CallContext, params: None) -> AsyncIterator[str]:
    yield ctx.caller.user_id


def _proc(
    path: str, kind: Literal["query", "mutation", "subscription"], input: Any, handler: Any
) -> Procedure:
    return Procedure(path=path, kind=kind, input=input, access=AllowAll(), handler=handler)


def build_test_router() -> Router:
    return Router(
        [
            _proc("test.echo", "query", EchoInput, echo),
            _proc("test.optional", "query", OptionalInput, optional),
            _proc("test.whoami", "query", None, whoami),
            _proc("test.add", "mutation", AddInput, add),
            _proc("test.fail", "query", FailInput, fail),
            _proc("test.failMutation", "mutation", FailInput, fail),
            _proc("test.slow", "query", SlowInput, slow),
            _proc("test.meet", "query", MeetInput, Rendezvous().meet),
            _proc("test.unencodable", "query", None, unencodable),
            _proc("test.ticks", "subscription", TicksInput, ticks),
            _proc("test.forever", "subscription", ForeverInput, forever),
            _proc("test.whoamiSub", "subscription", None, whoami_sub),
        ]
    )


@dataclass
class AppServer:
    port: int
    settings: Settings

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def trpc_url(self) -> str:
        return f"{self.base_url}/trpc"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/trpc"

    def token(self, user_id: str = "user-1", **kwargs: Any) -> str:
        return mint_token(SECRET, user_id, **kwargs)

    def client(self, token: str | None = "default") -> httpx.Client:
        """An HTTP client at /trpc; `token="default"` authenticates as user-1, None sends no header."""
        if token == "default":
            token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.trpc_url, headers=headers, timeout=10)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    data_dir: Path = tmp_path_factory.mktemp("trpc-data")
    settings = app_settings(data_dir, secret=SECRET, max_body_bytes=MAX_BODY_BYTES)
    with serving(settings, build_test_router()) as port:
        yield AppServer(port=port, settings=settings)


def wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
