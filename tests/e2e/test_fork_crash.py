"""All or nothing under a power cut (fork.md §5): the server is SIGKILLed at each fork step.

For every crash point (GASTOWN_TEST_FAULT=<step>) the fork is attempted with an
idempotencyKey on a copy of a source town with real history (thousands of rows), the
process dies, a normal server restarts on the same data, and then:
- before publishing: no visible town, no file left of it, the source's logical dump unchanged;
- after publishing: exactly the one published town;
- in both cases a retry with the same key yields exactly one town, and retrying again returns
  the same result.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from tests.server import RunningServer, start_server
from tests.trpc import mutate, query
from town.demo import populate_town

OWNER = "crash-owner"
ORG = str(uuid.uuid4())
STEPS = ["initialized", "import_part", "configured", "imported", "lineage", "published"]
BUILDING_STEPS = ("initialized", "import_part", "configured")  # inside the creation of the new town's file
RIGS = (
    ("web", "https://github.com/acme/web.git"),
    ("api", "https://github.com/acme/api.git"),
    ("infra", "https://gitlab.com/acme/infra.git"),
)


@dataclass(frozen=True)
class Template:
    data_dir: Path
    town_id: str
    copied: dict[str, int]  # what a fork of it copies (from a dry run)


def logical_dump(path: Path) -> dict[str, Any]:
    """Every table (the KV included) as sorted rows, plus the schema and user_version."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        dump: dict[str, Any] = {
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "schema": sorted(r for r in conn.execute("SELECT type, name, sql FROM sqlite_master")),
        }
        for table in tables:
            dump[table] = sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
        return dump
    finally:
        conn.close()


def _build_template(root: Path) -> Template:
    data = root / "data"
    server = start_server(data)
    try:
        client = server.client(server.token(OWNER))
        town_id = mutate(client, "createTown", {"name": "Crash source"})["id"]
        rig_ids = [
            mutate(client, "createRig", {"townId": town_id, "name": n, "gitUrl": u})["id"] for n, u in RIGS
        ]
        mutate(
            client,
            "updateTownConfig",
            {"townId": town_id, "config": {"env_vars": {"A": "1"}, "max_polecats_per_rig": 3}},
        )
        for i in range(12):  # a little history through the API: closed, failed and open beads
            bead = mutate(client, "createBead", {"rigId": rig_ids[i % 3], "title": f"api bead {i}"})[
                "bead_id"
            ]
            if i % 4 != 3:
                mutate(
                    client,
                    "updateBead",
                    {"rigId": rig_ids[i % 3], "beadId": bead, "status": "closed" if i % 2 else "failed"},
                )
    finally:
        server.stop()  # SIGTERM: a clean shutdown
    # Bulk history written while the server is stopped (storage.md allows it): real history,
    # every table of a fork's rows file filled.
    conn = apsw.Connection(str(data / "TownDO" / f"{town_id}.sqlite3"))
    try:
        with conn:
            populate_town(
                conn,
                rig_ids=rig_ids,
                beads=1400,
                events_per_bead=6,
                seed=7,
                actor_user_id=OWNER,
                town_id=town_id,
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    server = start_server(data)
    try:
        client = server.client(server.token(OWNER))
        dry = mutate(client, "forkTown", {"sourceTownId": town_id, "newTownName": "dry", "dryRun": True})
    finally:
        server.stop()  # SIGTERM: a clean shutdown
    return Template(data, town_id, dry["copied"])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return _build_template(tmp_path_factory.mktemp("crash-template"))


@pytest.fixture
def data_dir(template: Template, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(template.data_dir, target)
    return target


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for s in started:
        s.stop(signal.SIGKILL)


def town_ids_on_disk(data: Path, cls: str = "TownDO") -> set[str]:
    return {p.name[: -len(".sqlite3")] for p in (data / cls).glob("*.sqlite3")}


def all_files(data: Path, cls: str) -> set[str]:
    return {p.name for p in (data / cls).glob("*")} if (data / cls).exists() else set()


def fork_input(template: Template, target: str, key: str) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {
        "sourceTownId": template.town_id,
        "newTownName": "Crash fork",
        "idempotencyKey": key,
    }
    if target == "org":
        body["organizationId"] = ORG
        return "forkOrgTown", body
    return "forkTown", body


def visible_forks(client: httpx.Client, template: Template, target: str) -> list[dict[str, Any]]:
    if target == "org":
        return query(client, "listOrgTowns", {"organizationId": ORG})
    return [t for t in query(client, "listTowns") if t["id"] != template.town_id]


CASES = [(step, "personal") for step in STEPS] + [("lineage", "org"), ("published", "org")]


@pytest.mark.parametrize(("step", "target"), CASES, ids=[f"{s}-{t}" for s, t in CASES])
def test_fork_killed_at_step_leaves_nothing_or_exactly_the_published_town(
    template: Template, data_dir: Path, servers: list[RunningServer], step: str, target: str
) -> None:
    source_db = data_dir / "TownDO" / f"{template.town_id}.sqlite3"
    source_before = logical_dump(source_db)
    key = f"crash-{step}-{uuid.uuid4().hex}"
    path, body = fork_input(template, target, key)

    doomed = start_server(data_dir, extra_env={"GASTOWN_TEST_FAULT": step})
    servers.append(doomed)
    client = doomed.client(doomed.token(OWNER, orgs={ORG: "member"}))
    try:
        response = client.post(f"/trpc/gastown.{path}", json=body)
        assert response.status_code >= 500, (
            f"the fork at {step} answered {response.status_code}: {response.text}"
        )
    except httpx.TransportError:
        pass  # the connection dropped: the process is gone
    assert doomed.process.wait(timeout=30) == -signal.SIGKILL
    assert f"killing the process at fork step {step}" in doomed.log_text()

    server = start_server(data_dir)
    servers.append(server)
    client = server.client(server.token(OWNER, orgs={ORG: "member"}))
    assert [t["id"] for t in query(client, "listTowns") if t["id"] == template.town_id] == [template.town_id]
    visible = visible_forks(client, template, target)
    if step == "published":
        # The owner row was written before the kill: the fork is complete and stays.
        assert len(visible) == 1
        assert visible[0]["forked_from"]["town_id"] == template.town_id
        assert town_ids_on_disk(data_dir) == {template.town_id, visible[0]["id"]}
    else:
        assert visible == []
        # Killed while the new town's file was still being made, the scratch file is what is
        # left (dos.runtime Namespace.create); after, the unpublished town itself.
        swept = "first write or creation, interrupted" if step in BUILDING_STEPS else "removing unpublished town"
        assert swept in server.log_text(), "startup did not sweep the half-written town"
        assert town_ids_on_disk(data_dir) == {template.town_id}
        leftovers = {f for f in all_files(data_dir, "TownDO") if not f.startswith(template.town_id)}
        assert leftovers == set(), f"half-written town files survived the restart: {leftovers}"
        assert all_files(data_dir, "TownContainerDO") == set()
    assert town_ids_on_disk(data_dir, "TownContainerDO") <= town_ids_on_disk(data_dir)
    assert logical_dump(source_db) == source_before, "the crashed fork changed the source"
    # The interrupted attempt's status: done once published, else failed (a retry starts over).
    status = query(client, "getForkStatus", {"idempotencyKey": key})
    if step == "published":
        assert (status["phase"], status["townId"], status["percent"]) == ("done", visible[0]["id"], 100)
    else:
        assert (status["phase"], status["townId"], status["error"]["code"]) == ("failed", None, "INTERNAL_SERVER_ERROR")

    first = mutate(client, path, body)
    again = mutate(client, path, body)
    assert again == first, "a retry with the same key must return the first result"
    new_id = first["town"]["id"]
    status = query(client, "getForkStatus", {"idempotencyKey": key})
    assert (status["phase"], status["townId"]) == ("done", new_id)
    assert status["rowsDone"] == status["rowsTotal"] == sum(v for k, v in template.copied.items() if k != "rigs")
    if step == "published":
        assert new_id == visible[0]["id"]
    assert [t["id"] for t in visible_forks(client, template, target)] == [new_id]
    assert town_ids_on_disk(data_dir) == {template.town_id, new_id}, "exactly one extra town database"
    assert town_ids_on_disk(data_dir, "TownContainerDO") == {new_id}
    assert first["copied"] == template.copied
    assert query(client, "getTown", {"townId": new_id})["forked_from"]["town_id"] == template.town_id
    assert len(query(client, "listRigs", {"townId": new_id})) == len(RIGS)
    beads = query(client, "listBeads", {"townId": new_id, "limit": 500})
    assert len(beads) == min(500, template.copied["beads"])
    assert logical_dump(source_db) == source_before, "the fork changed the source"


def test_fork_without_key_killed_before_publishing_leaves_nothing(
    template: Template, data_dir: Path, servers: list[RunningServer]
) -> None:
    source_db = data_dir / "TownDO" / f"{template.town_id}.sqlite3"
    source_before = logical_dump(source_db)
    body = {"sourceTownId": template.town_id, "newTownName": "No key"}
    doomed = start_server(data_dir, extra_env={"GASTOWN_TEST_FAULT": "lineage"})
    servers.append(doomed)
    with pytest.raises(httpx.TransportError):
        doomed.client(doomed.token(OWNER)).post("/trpc/gastown.forkTown", json=body)
    assert doomed.process.wait(timeout=30) == -signal.SIGKILL

    server = start_server(data_dir)
    servers.append(server)
    client = server.client(server.token(OWNER))
    assert [t["id"] for t in query(client, "listTowns")] == [template.town_id]
    assert town_ids_on_disk(data_dir) == {template.town_id}
    assert all_files(data_dir, "TownContainerDO") == set()
    assert logical_dump(source_db) == source_before
    made = mutate(client, "forkTown", body)
    assert town_ids_on_disk(data_dir) == {template.town_id, made["town"]["id"]}


def test_template_history_spans_several_import_parts(template: Template) -> None:
    copied = template.copied
    # A kill at "import_part" (the first rows written into the export's rows file) lands with
    # rows written and more still to come: the beads come first, then thousands of events.
    assert copied["bead_events"] > 2000, copied
    assert copied["beads"] > 0 and copied["bead_dependencies"] > 0 and copied["review_metadata"] > 0
