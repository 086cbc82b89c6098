"""Towns and rigs through the real server, checked against the SQLite files (storage.md)."""

from __future__ import annotations

import uuid
from pathlib import Path

import apsw
import pytest

from tests.server import RunningServer
from tests.trpc import error_of, mutate, query


def read_db(path: Path) -> apsw.Connection:
    return apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


@pytest.fixture
def alice(server: RunningServer):  # type: ignore[no-untyped-def]
    return server.client(server.token(f"alice-{uuid.uuid4().hex[:6]}"))


def test_create_list_get_delete_town(server: RunningServer, alice) -> None:  # type: ignore[no-untyped-def]
    first = mutate(alice, "createTown", {"name": "First"})
    second = mutate(alice, "createTown", {"name": "Second"})
    assert set(first) == {"id", "name", "owner_user_id", "created_at", "updated_at", "forked_from"}
    assert first["forked_from"] is None
    assert [t["id"] for t in query(alice, "listTowns")] == [second["id"], first["id"]]
    assert query(alice, "getTown", {"townId": first["id"]}) == first

    town_file = server.data_dir / "TownDO" / f"{first['id']}.sqlite3"
    assert town_file.exists()
    with read_db(town_file) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
        config = db.execute("SELECT value FROM _kv WHERE key = 'town:config'").fetchone()[0]
        assert '"owner_user_id"' in config
        assert db.execute("SELECT value FROM _kv WHERE key = 'town:id'").fetchone()[0] == f'"{first["id"]}"'

    assert mutate(alice, "deleteTown", {"townId": first["id"]}) is None
    assert [t["id"] for t in query(alice, "listTowns")] == [second["id"]]
    assert error_of(query, alice, "getTown", {"townId": first["id"]}).code == "NOT_FOUND"
    assert not any(town_file.parent.glob(f"{first['id']}.sqlite3*"))


def test_user_object_file_name_is_percent_encoded(server: RunningServer) -> None:
    client = server.client(server.token("user/with spaces@x"))
    mutate(client, "createTown", {"name": "t"})
    assert (server.data_dir / "GastownUserDO" / "user%2Fwith%20spaces%40x.sqlite3").exists()


def test_new_town_config_has_the_new_town_defaults(alice) -> None:  # type: ignore[no-untyped-def]
    town = mutate(alice, "createTown", {"name": "Defaults"})["id"]
    config = query(alice, "getTownConfig", {"townId": town})
    assert config["merge_strategy"] == "pr"
    assert config["staged_convoys_default"] is True
    assert config["refinery"]["review_mode"] == "comments"
    assert config["refinery"]["auto_merge_delay_minutes"] == 5
    assert config["owner_user_id"] == config["created_by_user_id"]
    assert config["kilocode_token"].count(".") == 2  # a JWT minted for the owner; they may see it


def test_rigs_create_list_get_config_delete(server: RunningServer, alice) -> None:  # type: ignore[no-untyped-def]
    town = mutate(alice, "createTown", {"name": "Rigs"})["id"]
    rig = mutate(alice, "createRig", {"townId": town, "name": "web", "gitUrl": "https://github.com/acme/web.git"})
    assert set(rig) == {"id", "town_id", "name", "git_url", "default_branch", "platform_integration_id", "created_at", "updated_at"}
    assert (rig["town_id"], rig["default_branch"], rig["platform_integration_id"]) == (town, "main", None)
    dup = error_of(mutate, alice, "createRig", {"townId": town, "name": "web", "gitUrl": "https://github.com/acme/x.git"})
    assert dup.code == "CONFLICT"
    assert [r["id"] for r in query(alice, "listRigs", {"townId": town})] == [rig["id"]]

    detail = query(alice, "getRig", {"rigId": rig["id"]})
    assert detail["config"] == {}
    updated = mutate(alice, "updateRigConfig", {"rigId": rig["id"], "config": {"default_model": "m1", "max_concurrent_polecats": 2}})
    assert updated["config"] == {"default_model": "m1", "max_concurrent_polecats": 2}
    replaced = mutate(alice, "updateRigConfig", {"rigId": rig["id"], "config": {"review_mode": "comments"}})
    assert replaced["config"] == {"review_mode": "comments"}

    with read_db(server.data_dir / "TownDO" / f"{town}.sqlite3") as db:
        assert db.execute("SELECT name, git_url FROM rigs WHERE id = ?", (rig["id"],)).fetchall() == [("web", "https://github.com/acme/web.git")]
        runtime = db.execute("SELECT value FROM _kv WHERE key = ?", (f"rig:{rig['id']}:config",)).fetchone()[0]
        assert town in runtime

    bead = mutate(alice, "createBead", {"rigId": rig["id"], "title": "goes with the rig"})
    assert mutate(alice, "deleteRig", {"rigId": rig["id"]}) is None
    assert query(alice, "listRigs", {"townId": town}) == []
    assert error_of(query, alice, "getRig", {"rigId": rig["id"]}).code == "NOT_FOUND"
    with read_db(server.data_dir / "TownDO" / f"{town}.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM beads WHERE bead_id = ?", (bead["id"] if "id" in bead else bead["bead_id"],)).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM _kv WHERE key LIKE 'rig:%'").fetchone()[0] == 0


def test_bad_input_names_the_field(alice) -> None:  # type: ignore[no-untyped-def]
    err = error_of(mutate, alice, "createTown", {"name": ""})
    assert (err.code, err.status) == ("BAD_REQUEST", 400)
    assert "$.name" in err.message
    err = error_of(query, alice, "getTown", {"townId": "not-a-uuid"})
    assert err.code == "BAD_REQUEST" and "$.townId" in err.message
    err = error_of(mutate, alice, "createRig", {"townId": str(uuid.uuid4()), "name": "x", "gitUrl": "not a url"})
    assert err.code == "BAD_REQUEST" and "$.gitUrl" in err.message
