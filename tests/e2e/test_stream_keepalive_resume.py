"""Long-lived streams (trpc-wire.md §4, §5.3): keep-alive pings as tRPC v11 sends them, and
`tracked` events that resume from `lastEventId` after a reconnect with nothing lost or repeated.
The same through the real @trpc/client: tests/node/streams.test.mjs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets

from tests.server import RunningServer, start_server
from tests.trpc import mutate, query

EPOCH = "2000-01-01T00:00:00.000Z"


def _town_with_rig(client: httpx.Client) -> tuple[str, str]:
    town = mutate(client, "createTown", {"name": f"streamed-{uuid.uuid4().hex[:6]}"})["id"]
    rig = mutate(client, "createRig", {"townId": town, "name": "r", "gitUrl": "https://github.com/a/r.git"})["id"]
    return town, rig


def _beads(client: httpx.Client, rig: str, n: int, prefix: str) -> None:
    for i in range(n):
        mutate(client, "createBead", {"rigId": rig, "title": f"{prefix} {i}"})


def sse_events(
    client: httpx.Client, path: str, input: Any, *, want: int, headers: dict[str, str] | None = None, seconds: float = 15
) -> tuple[list[dict[str, Any]], bytes]:
    """Open an SSE subscription; collect events (`event`, `data`, `id`) until `want` data events
    arrived, the stream ended, or `seconds` passed. Returns them and the raw bytes."""
    url = f"/trpc/gastown.{path}?input=" + quote(json.dumps(input))
    events: list[dict[str, Any]] = []
    raw = b""
    deadline = time.monotonic() + seconds
    with client.stream("GET", url, headers={"accept": "text/event-stream", **(headers or {})}) as response:
        assert response.headers["content-type"] == "text/event-stream"
        buffer = b""
        for chunk in response.iter_bytes():
            raw += chunk
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                if not block.strip(b"\n"):
                    continue
                event: dict[str, Any] = {"event": "message"}
                for line in block.strip(b"\n").decode().split("\n"):
                    key, _, value = line.partition(": ")
                    event[key or line.rstrip(":")] = value
                events.append(event)
            if sum(1 for e in events if e["event"] == "message") >= want or time.monotonic() > deadline:
                break
            if events and events[-1]["event"] in ("return", "serialized-error"):
                break
    return events, raw


def data_of(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(e["id"], json.loads(e["data"])) for e in events if e["event"] == "message"]


def test_an_idle_sse_stream_gets_tRPCs_ping_event_every_second(server: RunningServer) -> None:
    client = server.client(server.token(f"pinged-{uuid.uuid4().hex[:6]}"))
    town, _ = _town_with_rig(client)  # no beads: no events to send
    started = time.monotonic()
    events, raw = sse_events(client, "watchTownEvents", {"townId": town, "pollMs": 100}, want=1, seconds=2.6)
    assert time.monotonic() - started >= 2.5
    assert raw.startswith(b"event: connected\ndata: {}\n\n\n")
    pings = raw.count(b"event: ping\ndata: \n\n\n")
    assert 2 <= pings <= 3, raw  # one per second of silence (tRPC's default intervalMs 1000)
    assert [e["event"] for e in events] == ["connected"] + ["ping"] * pings


def sse_url(path: str, input: Any, extra: str = "") -> str:
    return f"/trpc/gastown.{path}?{extra}input=" + quote(json.dumps(input))


def read_sse(client: httpx.Client, url: str, *, want: int, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Events (`event`, `data`, `id`) of an SSE response until `want` data events or its end."""
    events: list[dict[str, Any]] = []
    with client.stream("GET", url, headers={"accept": "text/event-stream", **(headers or {})}, timeout=15) as response:
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if line:
                key, _, value = line.partition(": ")
                event[key.rstrip(":")] = value
                continue
            if not event:
                continue
            event.setdefault("event", "message")
            events.append(event)
            event = {}
            if sum(1 for e in events if e["event"] == "message") >= want or events[-1]["event"] in ("return", "serialized-error"):
                break
    return events


@pytest.mark.parametrize("how", ["Last-Event-ID header", "lastEventId in the input", "lastEventId query parameter"])
def test_sse_resumes_after_the_last_event_id_with_nothing_lost_or_repeated(server: RunningServer, how: str) -> None:
    client = server.client(server.token(f"resumer-{uuid.uuid4().hex[:6]}"))
    town, rig = _town_with_rig(client)
    _beads(client, rig, 5, "before")
    input = {"townId": town, "since": EPOCH, "pollMs": 100}
    first = data_of(read_sse(client, sse_url("watchTownEvents", input), want=3))
    assert len(first) == 3 and all(ident for ident, _ in first)  # tracked: each has an `id:`
    _beads(client, rig, 4, "while away")  # written while the client is disconnected
    last_id = first[-1][0]
    if how == "Last-Event-ID header":
        url, headers = sse_url("watchTownEvents", input), {"Last-Event-ID": last_id}
    elif how == "lastEventId in the input":
        url, headers = sse_url("watchTownEvents", {**input, "lastEventId": last_id}), {}
    else:
        url, headers = sse_url("watchTownEvents", input, f"lastEventId={quote(last_id)}&"), {}
    written = [e["bead_event_id"] for e in reversed(query(client, "getTownEvents", {"townId": town, "limit": 100}))]
    assert len(written) == 9
    rest = data_of(read_sse(client, url, want=len(written) - 3, headers=headers))
    received = [e["bead_event_id"] for _, e in first + rest]
    assert received == written  # each once, in order
    # and nothing more comes after them (no repetition a moment later either)
    _beads(client, rig, 1, "after")
    tail = data_of(read_sse(client, sse_url("watchTownEvents", {**input, "lastEventId": rest[-1][0]}), want=1))
    assert [e["metadata"]["title"] for _, e in tail] == ["after 0"]


def test_websocket_subscription_resumes_from_params_last_event_id(server: RunningServer) -> None:
    token = server.token(f"ws-resumer-{uuid.uuid4().hex[:6]}")
    client = server.client(token)
    town, rig = _town_with_rig(client)
    _beads(client, rig, 4, "before")
    input = {"townId": town, "since": EPOCH, "pollMs": 100}

    async def take(n: int, last_event_id: str | None) -> list[dict[str, Any]]:
        async with websockets.connect(f"{server.ws_url}?connectionParams=1") as ws:
            await ws.send(json.dumps({"method": "connectionParams", "data": {"token": token}}))
            params: dict[str, Any] = {"input": input, "path": "gastown.watchTownEvents"}
            if last_event_id is not None:
                params["lastEventId"] = last_event_id  # where @trpc/client puts it on re-subscribe
            await ws.send(json.dumps({"id": 1, "method": "subscription", "params": params}))
            assert json.loads(await ws.recv()) == {"id": 1, "result": {"type": "started"}}
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(n)]
        return [f["result"] for f in frames]

    first = asyncio.run(take(2, None))
    for result in first:  # tRPC's tracked frame: result.id, and data {id, data}
        assert list(result) == ["type", "data", "id"] and result["data"]["id"] == result["id"]
    _beads(client, rig, 3, "while away")
    rest = asyncio.run(take(5, first[-1]["id"]))
    received = [r["data"]["data"]["bead_event_id"] for r in first + rest]
    written = [e["bead_event_id"] for e in reversed(query(client, "getTownEvents", {"townId": town, "limit": 100}))]
    assert received == written and len(written) == 7


def test_fork_progress_resumes_after_the_last_status(server: RunningServer) -> None:
    client = server.client(server.token(f"forker-{uuid.uuid4().hex[:6]}"))
    town, rig = _town_with_rig(client)
    _beads(client, rig, 3, "to fork")
    key = f"resume-{uuid.uuid4()}"
    mutate(client, "forkTown", {"sourceTownId": town, "newTownName": "resumed fork", "idempotencyKey": key})
    events = read_sse(client, sse_url("forkProgress", {"idempotencyKey": key}), want=5)
    (final_id, final), = data_of(events)
    assert final["phase"] == "done" and final_id.endswith(":done")
    assert events[-1]["event"] == "return"
    # a client that already has the final status gets nothing more, and completes
    again = read_sse(client, sse_url("forkProgress", {"idempotencyKey": key}), want=1, headers={"Last-Event-ID": final_id})
    assert [e["event"] for e in again] == ["connected", "return"]
    # one that stopped at an earlier phase gets the final status, once
    early = read_sse(client, sse_url("forkProgress", {"idempotencyKey": key, "lastEventId": "1:0:import"}), want=5)
    assert [d["phase"] for _, d in data_of(early)] == ["done"]


def test_a_malformed_last_event_id_is_a_bad_request(server: RunningServer) -> None:
    client = server.client(server.token(f"bad-id-{uuid.uuid4().hex[:6]}"))
    town, _ = _town_with_rig(client)
    events = read_sse(client, sse_url("watchTownEvents", {"townId": town}), want=1, headers={"Last-Event-ID": "nonsense"})
    assert events[-1]["event"] == "serialized-error"
    assert json.loads(events[-1]["data"])["data"]["code"] == "BAD_REQUEST"


@pytest.fixture(scope="module")
def fast_ping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("ws-ping")
    running = start_server(root / "data", extra_env={"GASTOWN_WS_PING_MS": "300", "GASTOWN_WS_PONG_WAIT_MS": "400"})
    yield running
    running.stop()


def test_the_server_pings_an_idle_websocket_and_closes_one_that_never_answers(fast_ping_server: RunningServer) -> None:
    async def scenario() -> tuple[list[str], float]:
        seen: list[str] = []
        async with websockets.connect(fast_ping_server.ws_url) as ws:
            for _ in range(2):  # answered: the socket stays open
                seen.append(await asyncio.wait_for(ws.recv(), 2))
                await ws.send("PONG")
            await ws.send("PING")  # a client's own keepAlive ping is answered
            seen.append(await asyncio.wait_for(ws.recv(), 2))
            seen.append(await asyncio.wait_for(ws.recv(), 2))  # the next PING: not answered
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            return seen, time.monotonic() - started

    seen, closed_after = asyncio.run(scenario())
    assert seen == ["PING", "PING", "PONG", "PING"]
    assert closed_after > 0.2  # closed only once pongWaitMs (400) passed after the unanswered PING
