"""gastown.listForks through the real server: the towns forked from a town, newest first, only
those the caller may read; deleted forks leave the list; the index is a TownLineageDO of its
own (the source town's database is never written) that survives restarts and is pruned of
forks that never became visible."""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from tests.fork_fixtures import logical_dump
from tests.server import RunningServer, start_server
from tests.trpc import error_of, mutate, query


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def _lineage_rows(data_dir: Path, source_id: str) -> list[tuple[str, str, str]]:
    path = data_dir / "TownLineageDO" / f"{source_id}.sqlite3"
    conn = apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    try:
        return [tuple(r) for r in conn.execute("SELECT town_id, owner_kind, owner_id FROM forks ORDER BY town_id")]
    finally:
        conn.close()


class World:
    """An org town S of org O (owner alice) forked three ways: by bob (member of O) into his
    personal account, by carol (member of O, owner of P) into org P, by alice into org O."""

    def __init__(self, server: RunningServer) -> None:
        tag = uuid.uuid4().hex[:6]
        self.org_o, self.org_p = str(uuid.uuid4()), str(uuid.uuid4())
        self.alice = server.client(server.token(f"alice-{tag}", orgs={self.org_o: "owner"}))
        self.bob = server.client(server.token(f"bob-{tag}", orgs={self.org_o: "member"}))
        self.carol = server.client(server.token(f"carol-{tag}", orgs={self.org_o: "member", self.org_p: "owner"}))
        self.biller = server.client(server.token(f"biller-{tag}", orgs={self.org_o: "billing_manager"}))
        self.admin = server.client(server.token(f"admin-{tag}", is_admin=True))
        self.stranger = server.client(server.token(f"stranger-{tag}"))
        self.source = mutate(self.alice, "createOrgTown", {"organizationId": self.org_o, "name": "Source"})["id"]
        self.by_bob = self._fork(self.bob, "forkTown", "Bob's copy")
        self.by_carol = self._fork(self.carol, "forkOrgTown", "Carol's copy", self.org_p)
        self.by_alice = self._fork(self.alice, "forkOrgTown", "Alice's copy", self.org_o)

    def _fork(self, client: httpx.Client, path: str, name: str, org: str | None = None) -> str:
        body: dict[str, Any] = {"sourceTownId": self.source, "newTownName": name}
        if org is not None:
            body["organizationId"] = org
        return str(mutate(client, path, body)["town"]["id"])


@pytest.fixture
def world(server: RunningServer) -> World:
    return World(server)


def test_forks_are_listed_newest_first_with_their_lineage(server: RunningServer) -> None:
    owner = server.client(server.token(f"owner-{uuid.uuid4().hex[:6]}"))
    source = mutate(owner, "createTown", {"name": "Template"})["id"]
    assert query(owner, "listForks", {"townId": source}) == []
    made = [mutate(owner, "forkTown", {"sourceTownId": source, "newTownName": f"copy {i}"}) for i in range(3)]
    listed = query(owner, "listForks", {"townId": source})
    assert _ids(listed) == [m["town"]["id"] for m in reversed(made)]
    for row, fork in zip(listed, reversed(made)):
        assert row == query(owner, "getTown", {"townId": row["id"]}), "rows are the towns as getTown answers them"
        assert row["forked_from"]["town_id"] == source
        assert row["forked_from"]["forked_at"] == fork["forked_from"]["forked_at"]
        assert row["name"] == fork["town"]["name"]
    # A fork of a fork is listed under its own source, not its grandparent.
    grandchild = mutate(owner, "forkTown", {"sourceTownId": made[0]["town"]["id"], "newTownName": "deeper"})
    assert _ids(query(owner, "listForks", {"townId": made[0]["town"]["id"]})) == [grandchild["town"]["id"]]
    assert len(query(owner, "listForks", {"townId": source})) == 3
    # A dry run records nothing.
    mutate(owner, "forkTown", {"sourceTownId": source, "newTownName": "dry", "dryRun": True})
    assert len(query(owner, "listForks", {"townId": source})) == 3


def test_each_caller_sees_only_the_forks_they_may_read(world: World) -> None:
    w = world
    assert _ids(query(w.alice, "listForks", {"townId": w.source})) == [w.by_alice]
    assert _ids(query(w.bob, "listForks", {"townId": w.source})) == [w.by_alice, w.by_bob]
    assert _ids(query(w.carol, "listForks", {"townId": w.source})) == [w.by_alice, w.by_carol]
    assert _ids(query(w.admin, "listForks", {"townId": w.source})) == [w.by_alice, w.by_carol, w.by_bob]
    # Org forks are OrgTown rows, personal ones Town rows.
    rows = {r["id"]: r for r in query(w.admin, "listForks", {"townId": w.source})}
    assert rows[w.by_carol]["owner_org_id"] == w.org_p
    assert rows[w.by_alice]["owner_org_id"] == w.org_o
    assert "owner_org_id" not in rows[w.by_bob]
    # Who may not read the source may not list its forks, and learns nothing about it.
    for client in (w.biller, w.stranger):
        assert error_of(query, client, "listForks", {"townId": w.source}).code == "NOT_FOUND"
    assert error_of(query, w.alice, "listForks", {"townId": str(uuid.uuid4())}).code == "NOT_FOUND"


def test_a_deleted_fork_leaves_the_list_and_the_index(server: RunningServer, world: World) -> None:
    w = world
    assert {r[0] for r in _lineage_rows(server.data_dir, w.source)} == {w.by_bob, w.by_carol, w.by_alice}
    assert mutate(w.bob, "deleteTown", {"townId": w.by_bob}) is None
    assert mutate(w.carol, "deleteOrgTown", {"organizationId": w.org_p, "townId": w.by_carol}) is None
    assert _ids(query(w.admin, "listForks", {"townId": w.source})) == [w.by_alice]
    assert _lineage_rows(server.data_dir, w.source) == [(w.by_alice, "org", w.org_o)]
    # Deleting the source drops its list with it; the fork keeps its forked_from note.
    assert mutate(w.alice, "deleteOrgTown", {"organizationId": w.org_o, "townId": w.source}) is None
    assert not any((server.data_dir / "TownLineageDO").glob(f"{w.source}.sqlite3*"))
    assert query(w.alice, "getTown", {"townId": w.by_alice})["forked_from"]["town_id"] == w.source


def test_forking_and_listing_never_write_the_source_database(server: RunningServer) -> None:
    owner = server.client(server.token(f"owner-{uuid.uuid4().hex[:6]}"))
    source = mutate(owner, "createTown", {"name": "Untouched"})["id"]
    source_db = server.data_dir / "TownDO" / f"{source}.sqlite3"
    before = logical_dump(source_db)
    fork = mutate(owner, "forkTown", {"sourceTownId": source, "newTownName": "copy"})
    assert _ids(query(owner, "listForks", {"townId": source})) == [fork["town"]["id"]]
    assert logical_dump(source_db) == before


# -- across restarts --------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for s in started:
        s.stop(signal.SIGKILL)


def test_forks_made_before_the_index_existed_are_indexed_at_startup(
    tmp_path: Path, servers: list[RunningServer]
) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    servers.append(first)
    owner = first.client(first.token("owner"))
    source = mutate(owner, "createTown", {"name": "Old"})["id"]
    forks = [mutate(owner, "forkTown", {"sourceTownId": source, "newTownName": f"f{i}"})["town"]["id"] for i in range(2)]
    first.stop()
    # As data written by a version without the index.
    shutil.rmtree(data / "TownLineageDO")
    (data / ".lineage-indexed").unlink()

    second = start_server(data)
    servers.append(second)
    owner = second.client(second.token("owner"))
    assert _ids(query(owner, "listForks", {"townId": source})) == list(reversed(forks))
    assert "indexed 2 existing fork(s)" in second.log_text()


def test_startup_prunes_entries_of_forks_that_never_became_visible(
    tmp_path: Path, servers: list[RunningServer]
) -> None:
    data = tmp_path / "data"
    doomed = start_server(data, extra_env={"GASTOWN_TEST_FAULT": "lineage"})
    servers.append(doomed)
    owner = doomed.client(doomed.token("owner"))
    source = mutate(owner, "createTown", {"name": "Source"})["id"]
    with pytest.raises(httpx.TransportError):
        owner.post("/trpc/gastown.forkTown", json={"sourceTownId": source, "newTownName": "doomed"})
    assert doomed.process.wait(timeout=30) == -signal.SIGKILL
    assert len(_lineage_rows(data, source)) == 1, "the entry is written before publishing"

    server = start_server(data)
    servers.append(server)
    owner = server.client(server.token("owner"))
    assert query(owner, "listForks", {"townId": source}) == []
    assert _lineage_rows(data, source) == []
    kept = mutate(owner, "forkTown", {"sourceTownId": source, "newTownName": "kept"})["town"]["id"]
    assert _ids(query(owner, "listForks", {"townId": source})) == [kept]
