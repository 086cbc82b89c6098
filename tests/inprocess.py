"""The real app under uvicorn in a background thread, for adapter tests with test-only routers.

(End-to-end tests use tests/server.py instead: the real `python -m rpc.serve` process.)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import uvicorn

from rpc.app import create_app
from rpc.errors import RpcError
from rpc.router import Router
from rpc.settings import Settings


def app_settings(data_dir: Path, *, secret: str, max_body_bytes: int, dev_mode: bool = False,
                  cors_origins: tuple[str, ...] = (), log_level: str = "warning") -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        secret=secret,
        dev_mode=dev_mode,
        demo=False,
        git_token_service_url=None,
        max_body_bytes=max_body_bytes,
        cors_origins=cors_origins,
        log_level=log_level,
    )


@contextlib.contextmanager
def serving(settings: Settings, router: Router) -> Iterator[int]:
    """Serve `create_app(settings, router)` on an ephemeral port; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(settings, router=router),
        log_config=None,  # leave logging alone: caplog must see the app's records
        access_log=False,
        ws="websockets-sansio",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class MeetInput(msgspec.Struct):
    group: str
    n: int


class Rendezvous:
    """A test procedure's body that returns only once `n` calls of one group are inside it at
    the same time (or fails after a few seconds): concurrency shown without timing anything."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._arrived: dict[str, int] = {}
        self._all_here: dict[str, asyncio.Event] = {}

    async def meet(self, ctx: object, params: MeetInput) -> str:
        event = self._all_here.setdefault(params.group, asyncio.Event())
        self._arrived[params.group] = self._arrived.get(params.group, 0) + 1
        if self._arrived[params.group] >= params.n:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), self.timeout)
        except TimeoutError:
            raise RpcError("TIMEOUT", f"only {self._arrived[params.group]} of {params.n} calls met") from None
        return "met"
