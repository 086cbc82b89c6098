"""Fork progress through the real server (issue 7): gastown.forkProgress (SSE) and
gastown.getForkStatus, for the caller who started the fork only.

The source is a town with several import parts of history (written by town.demo.populate_town
while the server is stopped, as tests/surface_world.py does). A fork is made to fail after it
started, for real, by forking into an organization whose owner object cannot be opened (its
database path is a directory): everything up to "publish" runs, then the publish fails.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import apsw
import httpx
import pytest

from tests.server import RunningServer, start_server
from tests.trpc import TrpcError, error_of, mutate, query
from town.demo import populate_town
from town.fork_export import DEFAULT_PART_ROWS

OWNER = "progress-owner"
ORG = str(uuid.uuid4())
PHASES = ["export", "import", "indexes", "config", "rigs", "publish", "done"]
RANK = {p: i for i, p in enumerate(PHASES)} | {"failed": len(PHASES) - 1}
INTERNAL = {"code": "INTERNAL_SERVER_ERROR", "message": "The fork failed because of an internal error"}


@dataclass
class World:
    data_dir: Path
    town_id: str
    rows: int  # rows a fork of the source copies (from a dry run)
    server: RunningServer = field(init=False)

    def start(self) -> None:
        self.server = start_server(self.data_dir)

    def client(self, user: str = OWNER, **claims: Any) -> httpx.Client:
        return self.server.client(self.server.token(user, **claims))

    def broken_org(self) -> str:
        """An organization whose owner object cannot be opened: a fork into it fails at publish."""
        org = str(uuid.uuid4())
        (self.data_dir / "GastownOrgDO" / f"{org}.sqlite3").mkdir(parents=True)
        return org

    def repair_org(self, org: str) -> None:
        (self.data_dir / "GastownOrgDO" / f"{org}.sqlite3").rmdir()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("fork-progress") / "data"
    server = start_server(data)
    try:
        client = server.client(server.token(OWNER))
        town_id = mutate(client, "createTown", {"name": "Progress source"})["id"]
        rigs = [
            mutate(client, "createRig", {"townId": town_id, "name": n, "gitUrl": f"https://github.com/acme/{n}.git"})["id"]
            for n in ("web", "api")
        ]
    finally:
        server.stop()
    conn = apsw.Connection(str(data / "TownDO" / f"{town_id}.sqlite3"))
    try:
        with conn:
            populate_town(conn, rig_ids=rigs, beads=9000, events_per_bead=8, seed=11, actor_user_id=OWNER, town_id=town_id)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    world = World(data, town_id, rows=0)
    world.start()
    dry = mutate(world.client(), "forkTown", {"sourceTownId": town_id, "newTownName": "dry", "dryRun": True})
    world.rows = sum(v for k, v in dry["copied"].items() if k != "rigs")
    yield world
    world.server.stop()


def fork_body(world: World, key: str, **extra: Any) -> dict[str, Any]:
    return {"sourceTownId": world.town_id, "newTownName": "Progress fork", "idempotencyKey": key, **extra}


class SseWatch(threading.Thread):
    """gastown.forkProgress over SSE (what httpSubscriptionLink reads), in a thread."""

    def __init__(self, server: RunningServer, token: str, key: str, wait_ms: int | None = None, *, raw: Any = None) -> None:
        super().__init__(daemon=True)
        params: Any = {"idempotencyKey": key} if raw is None else raw
        if wait_ms is not None:
            params["waitMs"] = wait_ms
        self.url = f"{server.trpc_url}/gastown.forkProgress?input={quote(json.dumps(params))}"
        self.token = token
        self.connected = threading.Event()
        self.statuses: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None
        self.returned = False

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "accept": "text/event-stream"}
        with httpx.stream("GET", self.url, headers=headers, timeout=60) as response:
            event = "message"
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                    if event == "connected":
                        self.connected.set()
                    elif event == "return":
                        self.returned = True
                elif line.startswith("data: ") and event == "message":
                    self.statuses.append(json.loads(line[len("data: ") :]))
                elif line.startswith("data: ") and event == "serialized-error":
                    self.error = json.loads(line[len("data: ") :])
                elif line == "":
                    event = "message"

    def started(self) -> SseWatch:
        self.start()
        assert self.connected.wait(10), "the SSE stream did not connect"
        return self

    def finished(self) -> SseWatch:
        self.join(30)
        assert not self.is_alive(), "the subscription did not end"
        return self


class Poller(threading.Thread):
    """getForkStatus every few milliseconds until the status is final (NOT_FOUND until it exists)."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        super().__init__(daemon=True)
        self.client, self.key = client, key
        self.statuses: list[dict[str, Any]] = []
        self.unexpected: list[TrpcError] = []  # an assert in a thread would fail nothing

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = query(self.client, "getForkStatus", {"idempotencyKey": self.key})
            except TrpcError as exc:
                if exc.code != "NOT_FOUND":
                    self.unexpected.append(exc)
                    return
                time.sleep(0.002)
                continue
            self.statuses.append(status)
            if status["phase"] in ("done", "failed"):
                return
            time.sleep(0.005)


def assert_ordered(statuses: list[dict[str, Any]], key: str) -> None:
    """Phases never go backwards, percent never decreases, rows never decrease; 100 only at done."""
    assert statuses, "no status"
    for before, after in itertools.pairwise(statuses):
        assert RANK[after["phase"]] >= RANK[before["phase"]], (before, after)
        assert after["percent"] >= before["percent"], (before, after)
        assert after["rowsDone"] >= before["rowsDone"], (before, after)
        assert after["updatedAt"] >= before["updatedAt"], (before, after)
    for status in statuses:
        assert status["idempotencyKey"] == key
        assert 0 <= status["percent"] <= 100
        assert (status["percent"] == 100) == (status["phase"] == "done"), status
        assert (status["error"] is not None) == (status["phase"] == "failed"), status
    assert [s for s in statuses if s["phase"] in ("done", "failed")] == statuses[-1:], "one final status, last"


def phases_of(statuses: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for status in statuses:
        if not seen or seen[-1] != status["phase"]:
            seen.append(status["phase"])
    return seen


def test_source_spans_several_import_parts(world: World) -> None:
    assert world.rows > 3 * DEFAULT_PART_ROWS, world.rows


def test_progress_of_a_multi_part_fork_arrives_in_order_and_complete(world: World) -> None:
    key = f"progress-{uuid.uuid4()}"
    client = world.client()
    watch = SseWatch(world.server, world.server.token(OWNER), key).started()
    poller = Poller(world.client(), key)
    poller.start()
    result = mutate(client, "forkTown", fork_body(world, key))
    statuses = watch.finished().statuses
    poller.join(30)

    assert watch.error is None and watch.returned
    assert_ordered(statuses, key)
    assert phases_of(statuses) == PHASES, [(s["phase"], s["rowsDone"]) for s in statuses]
    town_id = result["town"]["id"]
    assert {s["townId"] for s in statuses} == {town_id}
    counted = [s for s in statuses if s["rowsTotal"]]
    assert counted and {s["rowsTotal"] for s in counted} == {world.rows}
    imports = [s for s in statuses if s["phase"] == "import"]
    # The first import status comes after the first part: rows are reported part by part.
    assert 0 < imports[0]["rowsDone"] < world.rows, imports
    assert statuses[-1]["phase"] == "done" and statuses[-1]["rowsDone"] == world.rows
    assert statuses[-1]["percent"] == 100
    # Coalesced: far fewer statuses than parts and phases would allow at most one per 100 ms.
    assert len(statuses) <= len(PHASES) + 1 + world.rows // DEFAULT_PART_ROWS, len(statuses)

    # Polled while it ran: the same order, a status seen before the end, the same end.
    assert not poller.is_alive() and not poller.unexpected, poller.unexpected
    assert_ordered(poller.statuses, key)
    assert any(s["phase"] != "done" for s in poller.statuses), "no status read while the fork ran"
    assert poller.statuses[-1] == query(client, "getForkStatus", {"idempotencyKey": key})
    final = query(client, "getForkStatus", {"idempotencyKey": key})
    assert final == statuses[-1]
    rpc = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "gastown.getForkStatus", "params": {"idempotencyKey": key}})
    assert rpc.json()["result"] == final

    # Finished: a new watcher gets the final status only, at once.
    late = SseWatch(world.server, world.server.token(OWNER), key).started().finished()
    assert late.statuses == [final] and late.returned
    # A replay with the key returns the first result; the status still reads done.
    assert mutate(client, "forkTown", fork_body(world, key)) == result
    assert query(client, "getForkStatus", {"idempotencyKey": key}) == final


def test_only_the_forking_caller_can_read_or_watch_the_fork(world: World) -> None:
    key = f"mine-{uuid.uuid4()}"
    owner = world.client()
    other = world.client(f"other-{uuid.uuid4().hex[:6]}")
    admin = world.client(f"admin-{uuid.uuid4().hex[:6]}", is_admin=True)
    # Watched by someone else while it runs: nothing to see there.
    stranger_watch = SseWatch(world.server, world.server.token("someone-else"), key, wait_ms=2000).started()
    mutate(owner, "forkTown", fork_body(world, key))
    stranger_watch.finished()
    assert stranger_watch.statuses == []
    assert stranger_watch.error is not None and stranger_watch.error["data"]["code"] == "NOT_FOUND"
    for client in (other, admin):
        err = error_of(query, client, "getForkStatus", {"idempotencyKey": key})
        assert err.code == "NOT_FOUND" and err.status == 404
        watch = SseWatch(world.server, client.headers["Authorization"].split()[1], key, wait_ms=100).started().finished()
        assert watch.statuses == [] and watch.error is not None
        assert watch.error["data"]["code"] == "NOT_FOUND"
    # The same answer as for a key nobody used: nothing says that someone else has it.
    assert err.message == f"No fork with idempotencyKey '{key}' was started by this caller"
    assert query(owner, "getForkStatus", {"idempotencyKey": key})["phase"] == "done"


def test_a_watch_for_a_fork_that_never_starts_ends_not_found_after_waiting(world: World) -> None:
    started = time.monotonic()
    watch = SseWatch(world.server, world.server.token(OWNER), f"never-{uuid.uuid4()}", wait_ms=600).started().finished()
    assert time.monotonic() - started >= 0.6
    assert watch.statuses == [] and watch.error is not None
    assert watch.error["data"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "bad",
    [{"idempotencyKey": ""}, {"idempotencyKey": "k" * 129}, {}, {"idempotencyKey": "k", "extra": 1}, {"idempotencyKey": 7}],
)
def test_fork_status_inputs_are_checked_like_fork_keys(world: World, bad: dict[str, Any]) -> None:
    err = error_of(query, world.client(), "getForkStatus", bad)
    assert err.code == "BAD_REQUEST"
    watch = SseWatch(world.server, world.server.token(OWNER), "", raw=bad).started().finished()
    assert watch.statuses == [] and watch.error is not None
    assert watch.error["data"]["code"] == "BAD_REQUEST"


def test_a_failed_fork_ends_failed_with_a_clean_error_and_a_retry_with_the_key_works(world: World) -> None:
    org = world.broken_org()
    key = f"fail-{uuid.uuid4()}"
    client = world.client(orgs={org: "member"})
    body = fork_body(world, key, organizationId=org)
    towns_before = {p.name for p in (world.data_dir / "TownDO").glob("*.sqlite3")}
    watch = SseWatch(world.server, world.server.token(OWNER, orgs={org: "member"}), key).started()
    err = error_of(mutate, client, "forkOrgTown", body)
    assert err.code == "INTERNAL_SERVER_ERROR"
    statuses = watch.finished().statuses
    assert watch.returned and watch.error is None
    assert_ordered(statuses, key)
    assert phases_of(statuses) == [*PHASES[:-1], "failed"], phases_of(statuses)
    failed = statuses[-1]
    assert failed["error"] == INTERNAL and failed["townId"] is None
    assert failed["percent"] == statuses[-2]["percent"] < 100
    assert failed["rowsDone"] == failed["rowsTotal"] == world.rows
    assert query(client, "getForkStatus", {"idempotencyKey": key}) == failed
    # Nothing of the attempt is left, and the server logged the cause (not the status).
    assert {p.name for p in (world.data_dir / "TownDO").glob("*.sqlite3")} == towns_before
    assert "internal error in gastown.forkOrgTown" in world.server.log_text()

    # The failed status neither blocks nor changes a retry with the same key.
    world.repair_org(org)
    retry_watch = SseWatch(world.server, world.server.token(OWNER, orgs={org: "member"}), key).started()
    result = mutate(client, "forkOrgTown", body)
    retried = retry_watch.finished().statuses
    assert_ordered(retried, key)
    assert phases_of(retried) == PHASES
    assert retried[-1]["townId"] == result["town"]["id"]
    assert query(client, "getForkStatus", {"idempotencyKey": key}) == retried[-1]
    assert [t["id"] for t in query(client, "listOrgTowns", {"organizationId": org})] == [result["town"]["id"]]
    assert mutate(client, "forkOrgTown", body) == result


def test_after_a_failure_the_key_may_be_retried_with_another_input(world: World) -> None:
    org = world.broken_org()
    key = f"fail-other-{uuid.uuid4()}"
    client = world.client(orgs={org: "member"})
    assert error_of(mutate, client, "forkOrgTown", fork_body(world, key, organizationId=org)).code == "INTERNAL_SERVER_ERROR"
    assert query(client, "getForkStatus", {"idempotencyKey": key})["phase"] == "failed"
    result = mutate(client, "forkTown", fork_body(world, key, newTownName="Another input"))
    status = query(client, "getForkStatus", {"idempotencyKey": key})
    assert status["phase"] == "done" and status["townId"] == result["town"]["id"]
    world.repair_org(org)


def test_final_statuses_stay_readable_after_a_restart(world: World) -> None:
    org = world.broken_org()
    client = world.client(orgs={org: "member"})
    done_key, failed_key = f"kept-done-{uuid.uuid4()}", f"kept-failed-{uuid.uuid4()}"
    result = mutate(client, "forkTown", fork_body(world, done_key))
    error_of(mutate, client, "forkOrgTown", fork_body(world, failed_key, organizationId=org))
    before = {k: query(client, "getForkStatus", {"idempotencyKey": k}) for k in (done_key, failed_key)}
    world.server.stop()
    world.start()
    client = world.client(orgs={org: "member"})
    after = {k: query(client, "getForkStatus", {"idempotencyKey": k}) for k in (done_key, failed_key)}
    assert after == before
    assert after[done_key]["phase"] == "done" and after[done_key]["townId"] == result["town"]["id"]
    assert after[failed_key]["phase"] == "failed" and after[failed_key]["error"] == INTERNAL
    late = SseWatch(world.server, world.server.token(OWNER), failed_key).started().finished()
    assert late.statuses == [after[failed_key]]
    world.repair_org(org)
