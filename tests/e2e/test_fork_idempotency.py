"""idempotencyKey and dryRun (fork.md §1, §5): one town per (caller, key), whatever the retries."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import RunningServer, object_files, start_server
from tests.trpc import error_of, mutate, query

ORG = str(uuid.uuid4())


class World:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        ids = {n: f"{n}-{uuid.uuid4().hex[:8]}" for n in ("alice", "mike", "mary")}
        self.ids = ids
        self.alice = server.client(server.token(ids["alice"]))
        self.mike = server.client(server.token(ids["mike"], orgs={ORG: "member"}))
        self.mary = server.client(server.token(ids["mary"], orgs={ORG: "member"}))
        self.personal = _source(self.alice, "createTown", {"name": "Idem source"})
        self.org_town = _source(
            self.mike, "createOrgTown", {"organizationId": ORG, "name": "Idem org source"}
        )


def _source(client: httpx.Client, path: str, input: dict[str, Any]) -> str:
    town = mutate(client, path, input)["id"]
    rig = mutate(
        client, "createRig", {"townId": town, "name": "web", "gitUrl": "https://github.com/acme/web.git"}
    )["id"]
    for i in range(3):
        bead = mutate(client, "createBead", {"rigId": rig, "title": f"done {i}"})["bead_id"]
        mutate(client, "updateBead", {"rigId": rig, "beadId": bead, "status": "closed"})
    mutate(client, "createBead", {"rigId": rig, "title": "still open"})
    return town


@pytest.fixture(scope="module")
def world(server: RunningServer) -> World:
    return World(server)


def town_files(server: RunningServer) -> set[str]:
    return {p.name for p in object_files(server, "TownDO")}


def container_files(server: RunningServer) -> set[str]:
    return {p.name for p in object_files(server, "TownContainerDO")}


def personal_ids(client: httpx.Client) -> list[str]:
    return [t["id"] for t in query(client, "listTowns")]


def fork_body(source: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sourceTownId": source, "newTownName": "Idem fork", **extra}
    if key is not None:
        body["idempotencyKey"] = key
    return body


def test_same_key_and_input_returns_the_first_result_and_makes_one_town(world: World) -> None:
    before_files, before_towns = town_files(world.server), personal_ids(world.alice)
    body = fork_body(world.personal, f"key-{uuid.uuid4()}")
    first = mutate(world.alice, "forkTown", body)
    second = mutate(world.alice, "forkTown", body)
    third = mutate(world.alice, "forkTown", body)
    assert first == second == third
    assert town_files(world.server) - before_files == {f"{first['town']['id']}.sqlite3"}
    assert set(personal_ids(world.alice)) - set(before_towns) == {first["town"]["id"]}


@pytest.mark.parametrize(
    "change",
    [
        {"newTownName": "Another name"},
        {"includeEnvVars": False},
        {"includeGitAuthor": False},
        {"dryRun": True},
    ],
    ids=["name", "env", "git-author", "dry-run"],
)
def test_same_key_with_different_input_is_conflict(world: World, change: dict[str, Any]) -> None:
    key = f"key-{uuid.uuid4()}"
    first = mutate(world.alice, "forkTown", fork_body(world.personal, key))
    before = town_files(world.server)
    err = error_of(mutate, world.alice, "forkTown", {**fork_body(world.personal, key), **change})
    assert (err.status, err.code) == (409, "CONFLICT")
    assert err.body["error"]["code"] == -32009
    assert town_files(world.server) == before
    assert mutate(world.alice, "forkTown", fork_body(world.personal, key)) == first


def test_same_key_on_the_other_fork_procedure_is_conflict(world: World) -> None:
    key = f"key-{uuid.uuid4()}"
    mutate(world.mary, "forkTown", fork_body(world.org_town, key))
    err = error_of(mutate, world.mary, "forkOrgTown", fork_body(world.org_town, key, organizationId=ORG))
    assert err.code == "CONFLICT"


def test_same_key_from_different_callers_gives_independent_towns(world: World) -> None:
    key = f"shared-{uuid.uuid4()}"
    mary = mutate(world.mary, "forkTown", fork_body(world.org_town, key))
    mike = mutate(world.mike, "forkTown", fork_body(world.org_town, key))
    assert mary["town"]["id"] != mike["town"]["id"]
    assert (mary["town"]["owner_user_id"], mike["town"]["owner_user_id"]) == (
        world.ids["mary"],
        world.ids["mike"],
    )
    # Into the same org, with the same key: still one town per caller.
    body = fork_body(world.org_town, f"org-{key}", organizationId=ORG)
    into_org = [mutate(c, "forkOrgTown", body) for c in (world.mary, world.mike, world.mary, world.mike)]
    assert into_org[0] == into_org[2] and into_org[1] == into_org[3]
    assert into_org[0]["town"]["id"] != into_org[1]["town"]["id"]
    listed = {t["id"] for t in query(world.mary, "listOrgTowns", {"organizationId": ORG})}
    assert {into_org[0]["town"]["id"], into_org[1]["town"]["id"]} <= listed


def test_concurrent_requests_with_one_key_make_exactly_one_town(world: World) -> None:
    before_files, before_towns = town_files(world.server), set(personal_ids(world.alice))
    body = fork_body(world.personal, f"burst-{uuid.uuid4()}")
    token = world.server.token(world.ids["alice"])

    clients = [world.server.client(token) for _ in range(8)]
    for client in clients:  # connect first, so the requests themselves start together
        client.get("/healthz")
    start = threading.Barrier(len(clients))

    def attempt(client: httpx.Client) -> tuple[int, bytes]:
        start.wait()
        response = client.post("/trpc/gastown.forkTown", json=body)
        return response.status_code, response.content

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        answers = list(pool.map(attempt, clients))
    for client in clients:
        client.close()
    assert {status for status, _ in answers} == {200}
    assert len({content for _, content in answers}) == 1, "every concurrent caller gets the same result"
    new = set(personal_ids(world.alice)) - before_towns
    assert len(new) == 1
    assert town_files(world.server) - before_files == {f"{new.pop()}.sqlite3"}


def test_without_a_key_every_call_is_a_new_fork(world: World) -> None:
    before = town_files(world.server)
    first = mutate(world.alice, "forkTown", fork_body(world.personal))
    second = mutate(world.alice, "forkTown", fork_body(world.personal))
    assert first["town"]["id"] != second["town"]["id"]
    assert len(town_files(world.server) - before) == 2


def test_dry_run_creates_nothing_and_reports_what_a_fork_would_copy(world: World) -> None:
    before_files, before_containers = town_files(world.server), container_files(world.server)
    before_towns = personal_ids(world.alice)
    before_org = query(world.mary, "listOrgTowns", {"organizationId": ORG})
    dry = mutate(world.alice, "forkTown", fork_body(world.personal, dryRun=True))
    dry_key = f"dry-{uuid.uuid4()}"
    dry_org = mutate(
        world.mary, "forkOrgTown", fork_body(world.org_town, dry_key, dryRun=True, organizationId=ORG)
    )
    assert dry["town"] is None and dry_org["town"] is None
    assert dry["rigs"] == [] and dry_org["rigs"] == []
    assert town_files(world.server) == before_files
    assert container_files(world.server) == before_containers
    assert personal_ids(world.alice) == before_towns
    assert query(world.mary, "listOrgTowns", {"organizationId": ORG}) == before_org
    assert dry["forked_from"]["town_id"] == world.personal
    # The dry run spent nothing: its key still starts a real fork.
    real_org = mutate(world.mary, "forkOrgTown", fork_body(world.org_town, dry_key, organizationId=ORG))
    assert real_org["town"]["owner_org_id"] == ORG
    real = mutate(world.alice, "forkTown", fork_body(world.personal))
    assert dry_org["copied"] == real_org["copied"]
    assert dry["copied"] == real["copied"] == {**real["copied"], "beads": 3, "rigs": 1}
    assert dry["skipped"] == real["skipped"]
    assert dry["skipped"]["beads_active"] == 1


def test_first_result_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        alice = server.client(server.token("alice"))
        source = _source(alice, "createTown", {"name": "restart source"})
        body = fork_body(source, "restart-key")
        first = mutate(alice, "forkTown", body)
    finally:
        server.stop()
    server = start_server(data)
    try:
        alice = server.client(server.token("alice"))
        assert mutate(alice, "forkTown", body) == first
        assert sorted(personal_ids(alice)) == sorted([source, first["town"]["id"]])
        assert error_of(mutate, alice, "forkTown", {**body, "newTownName": "other"}).code == "CONFLICT"
    finally:
        server.stop()
