"""Graceful stop (issue 9): SIGTERM lets in-flight calls finish, a running fork completes or
rolls back (never half a town), and WebSocket and SSE clients get a clean close."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest
import websockets

from tests.server import RunningServer, start_server
from tests.trpc import mutate, query
from town.demo import populate_town

OWNER = "graceful-owner"
GRACEFUL_STOP_MS = 300_000


@pytest.fixture
def servers() -> Any:
    started: list[RunningServer] = []
    yield started
    for s in started:
        s.stop(signal.SIGKILL)


def _big_source(data: Path, servers: list[RunningServer]) -> str:
    """A town whose fork takes long enough to be caught mid-way (history written offline)."""
    server = start_server(data)
    servers.append(server)
    client = server.client(server.token(OWNER))
    town = mutate(client, "createTown", {"name": "Big source"})["id"]
    rigs = [mutate(client, "createRig", {"townId": town, "name": f"r{i}", "gitUrl": f"https://github.com/a/r{i}.git"})["id"] for i in range(2)]
    assert server.stop() in (0, -signal.SIGTERM)
    conn = apsw.Connection(str(data / "TownDO" / f"{town}.sqlite3"))
    try:
        with conn:
            populate_town(conn, rig_ids=rigs, beads=12000, events_per_bead=8, seed=3, actor_user_id=OWNER, town_id=town)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return town


def _town_files(data: Path) -> set[str]:
    return {p.name.split(".", 1)[0] for p in (data / "TownDO").glob("*.sqlite3")}


def _sigterm_mid_fork(
    data: Path, servers: list[RunningServer], extra_env: dict[str, str] | None = None
) -> tuple[str, dict[str, Any], str, RunningServer, Any]:
    """Start a keyed fork of a big town, SIGTERM the server once its import runs; the server
    must stop cleanly. Returns (source id, fork input, phase at SIGTERM, server, answer)."""
    source = _big_source(data, servers)
    server = start_server(data, extra_env=extra_env)
    servers.append(server)
    client = server.client(server.token(OWNER))
    key = f"graceful-{uuid.uuid4().hex}"
    body = {"sourceTownId": source, "newTownName": "Stopped fork", "idempotencyKey": key}
    answer: list[Any] = []

    def fork() -> None:
        try:
            answer.append(client.post("/trpc/gastown.forkTown", json=body, timeout=60))
        except httpx.HTTPError as exc:  # recorded: the caller's assertions say what happened
            answer.append(exc)

    thread = threading.Thread(target=fork)
    thread.start()
    watcher = server.client(server.token(OWNER))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # SIGTERM once the import is running
        status = watcher.get("/trpc/gastown.getForkStatus", params={"input": json.dumps({"idempotencyKey": key})})
        if status.status_code == 200 and status.json()["result"]["data"]["phase"] not in ("pending", "initialized"):
            break
        time.sleep(0.01)
    phase = status.json()["result"]["data"]["phase"]
    server.process.send_signal(signal.SIGTERM)
    thread.join(timeout=60)
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log_text()
    assert phase not in ("done", "failed"), f"SIGTERM came too late to test anything (phase {phase})"
    return source, body, phase, server, answer[0]


def test_sigterm_during_a_fork_lets_it_finish_and_answer(tmp_path: Path, servers: list[RunningServer]) -> None:
    data = tmp_path / "data"
    source, body, phase, server, response = _sigterm_mid_fork(data, servers)
    assert "Traceback" not in server.log_text()
    # The call in flight when the stop began finishes: the fork completes and is answered.
    assert isinstance(response, httpx.Response), f"the fork (in phase {phase} at SIGTERM) got {response!r}"
    assert response.status_code == 200, response.text
    made = response.json()["result"]["data"]

    again = start_server(data)
    servers.append(again)
    client = again.client(again.token(OWNER))
    forks = [t for t in query(client, "listTowns") if t["id"] != source]
    assert [t["id"] for t in forks] == [made["town"]["id"]]
    assert _town_files(data) == {source, made["town"]["id"]}
    assert len(query(client, "listRigs", {"townId": made["town"]["id"]})) == 2
    retry = mutate(client, "forkTown", body)
    assert retry["town"]["id"] == made["town"]["id"], "a retry with the key must give the same town"
    assert _town_files(data) == {source, made["town"]["id"]}
    status = query(client, "getForkStatus", {"idempotencyKey": body["idempotencyKey"]})
    assert status["phase"] == "done" and status["rowsDone"] == status["rowsTotal"] > 0


def test_a_fork_cut_off_by_the_stop_timeout_leaves_nothing_and_a_retry_gives_one_town(
    tmp_path: Path, servers: list[RunningServer]
) -> None:
    data = tmp_path / "data"
    source, body, _, stopped, response = _sigterm_mid_fork(data, servers, {"GASTOWN_GRACEFUL_STOP_MS": "1"})
    assert "timeout graceful shutdown exceeded" in stopped.log_text(), "the fork was not cut off"
    # Cancelled after 1 ms of grace: a clean "retry later", and no traceback.
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 503, response.text
    assert response.json()["error"]["data"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Traceback" not in stopped.log_text()

    again = start_server(data)
    servers.append(again)
    client = again.client(again.token(OWNER))
    assert [t["id"] for t in query(client, "listTowns")] == [source], "a half-made fork is visible"
    assert "removing" not in again.log_text(), "the fork was not rolled back at the stop (the start swept it)"
    assert _town_files(data) == {source}, "the cut-off fork left a town database"
    assert list(data.glob("TownContainerDO/*")) == [], "the cut-off fork left container state"
    made = mutate(client, "forkTown", body)
    assert mutate(client, "forkTown", body)["town"]["id"] == made["town"]["id"]
    assert [t["id"] for t in query(client, "listTowns") if t["id"] != source] == [made["town"]["id"]]
    assert _town_files(data) == {source, made["town"]["id"]}


def test_sigterm_closes_websocket_and_sse_streams_cleanly(tmp_path: Path, servers: list[RunningServer]) -> None:
    # A graceful timeout far beyond the 30 s wait below: the server stops because it closes the
    # open streams itself, not because the timeout cut them off.
    server = start_server(tmp_path / "data", extra_env={"GASTOWN_GRACEFUL_STOP_MS": str(GRACEFUL_STOP_MS)})
    servers.append(server)
    token = server.token(OWNER)
    client = server.client(token)
    town = mutate(client, "createTown", {"name": "Streams"})["id"]
    rig = mutate(client, "createRig", {"townId": town, "name": "r", "gitUrl": "https://github.com/a/r.git"})["id"]
    mutate(client, "createBead", {"rigId": rig, "title": "before"})
    watch = {"townId": town, "since": "2000-01-01T00:00:00.000Z", "pollMs": 100}
    outcome: dict[str, Any] = {}

    def sse() -> None:
        lines: list[str] = []
        try:
            with httpx.Client(timeout=30) as c, c.stream(
                "GET", f"{server.trpc_url}/gastown.watchTownEvents",
                params={"input": json.dumps(watch)}, headers={"Authorization": f"Bearer {token}"},
            ) as stream:
                lines.extend(stream.iter_lines())
            outcome["sse"] = ("ended", lines)
        except httpx.HTTPError as exc:
            outcome["sse"] = (repr(exc), lines)

    async def ws(started: threading.Event) -> None:
        async with websockets.connect(f"{server.ws_url}?connectionParams=1") as sock:
            await sock.send(json.dumps({"method": "connectionParams", "data": {"token": token}}))
            await sock.send(json.dumps({"id": 1, "method": "subscription", "params": {"path": "gastown.watchTownEvents", "input": watch}}))
            assert json.loads(await sock.recv()) == {"id": 1, "result": {"type": "started"}}
            assert json.loads(await sock.recv())["result"]["type"] == "data"
            started.set()
            try:
                while True:
                    await asyncio.wait_for(sock.recv(), 30)
            except websockets.ConnectionClosed as closed:
                outcome["ws"] = (closed.rcvd.code if closed.rcvd else None, closed.rcvd_then_sent)

    ws_started = threading.Event()
    ws_thread = threading.Thread(target=lambda: asyncio.run(ws(ws_started)))
    sse_thread = threading.Thread(target=sse)
    ws_thread.start()
    sse_thread.start()
    assert ws_started.wait(10)
    time.sleep(0.5)  # the SSE stream is open and has delivered the history
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM), "the stop waited for the open streams"
    ws_thread.join(10)
    sse_thread.join(10)

    assert outcome.get("ws", (None,))[0] == 1012, f"no close frame (1012 service restart) on the WebSocket: {outcome.get('ws')}"
    state, lines = outcome["sse"]
    assert state == "ended", f"the SSE stream did not end cleanly: {state}"
    assert "event: connected" in lines and any(line.startswith("data: ") and "before" in line for line in lines)
    log = server.log_text()
    assert "Application shutdown complete" in log and "Traceback" not in log, log[-3000:]
