"""Who may fork (fork.md §2), where the fork lands, and the fork input on the wire (tRPC and
JSON-RPC), through the real server."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import httpx
import pytest

from tests.server import RunningServer, object_file, object_files
from tests.trpc import error_of, mutate, query

ORG_A = str(uuid.uuid4())  # owns the source org town
ORG_B = str(uuid.uuid4())  # a second org, target of cross-org forks
RIG_URL = "https://github.com/acme/web.git"


def _uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class World:
    """Callers and two source towns (one personal, one org) with a rig and a closed bead each."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        tok = server.token
        ids = {n: _uid(n) for n in ("alice", "sam", "mike", "mary", "bill", "olga", "root")}
        self.ids = ids
        # alice owns the personal source; she belongs to ORG_B as a plain member.
        self.alice = server.client(tok(ids["alice"], orgs={ORG_B: "member"}))
        self.alice_target_owner = server.client(tok(ids["alice"], orgs={ORG_B: "owner"}))
        self.alice_target_billing = server.client(tok(ids["alice"], orgs={ORG_B: "billing_manager"}))
        self.alice_no_org = server.client(tok(ids["alice"]))
        self.sam = server.client(tok(ids["sam"], orgs={ORG_B: "member"}))  # stranger to both sources
        self.mike = server.client(tok(ids["mike"], orgs={ORG_A: "member"}))  # created the org town
        self.mary = server.client(tok(ids["mary"], orgs={ORG_A: "member", ORG_B: "member"}))
        self.bill = server.client(tok(ids["bill"], orgs={ORG_A: "billing_manager", ORG_B: "member"}))
        self.olga = server.client(tok(ids["olga"], orgs={ORG_A: "owner"}))
        self.admin = server.client(tok(ids["root"], is_admin=True, orgs={ORG_B: "member"}))
        self.personal = _source(self.alice, "createTown", {"name": "Alice source"})
        self.org_town = _source(self.mike, "createOrgTown", {"organizationId": ORG_A, "name": "Org source"})


def _source(client: httpx.Client, path: str, input: dict[str, Any]) -> str:
    town = mutate(client, path, input)["id"]
    rig = mutate(client, "createRig", {"townId": town, "name": "web", "gitUrl": RIG_URL})["id"]
    bead = mutate(client, "createBead", {"rigId": rig, "title": "finished work"})["bead_id"]
    mutate(client, "updateBead", {"rigId": rig, "beadId": bead, "status": "closed"})
    return town


@pytest.fixture(scope="module")
def world(server: RunningServer) -> World:
    return World(server)


def town_files(server: RunningServer) -> set[str]:
    return {p.name for p in object_files(server, "TownDO")}


def stored_config(server: RunningServer, town_id: str) -> dict[str, Any]:
    path = object_file(server, "TownDO", town_id)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM _kv WHERE key = 'town:config'").fetchone()
    finally:
        conn.close()
    assert row is not None
    return json.loads(row[0])


def fork(client: httpx.Client, source: str, **extra: Any) -> dict[str, Any]:
    return mutate(
        client, "forkTown", {"sourceTownId": source, "newTownName": f"fork {uuid.uuid4().hex[:6]}", **extra}
    )


def fork_org(client: httpx.Client, source: str, org: str, **extra: Any) -> dict[str, Any]:
    body = {
        "sourceTownId": source,
        "newTownName": f"org fork {uuid.uuid4().hex[:6]}",
        "organizationId": org,
        **extra,
    }
    return mutate(client, "forkOrgTown", body)


def denied(server: RunningServer, fn: Any, *args: Any) -> str:
    """The error code of a fork attempt, checking it created no town file."""
    before = town_files(server)
    code = error_of(fn, *args).code
    assert town_files(server) == before, "a denied fork left a town database behind"
    return code


def assert_personal_fork(
    world: World, client: httpx.Client, result: dict[str, Any], owner: str, source: str
) -> None:
    town = result["town"]
    assert town["owner_user_id"] == owner
    assert "owner_org_id" not in town
    assert town["forked_from"]["town_id"] == source
    assert town["forked_from"]["by_user_id"] == owner
    assert [t["id"] for t in query(client, "listTowns") if t["id"] == town["id"]] == [town["id"]]
    cfg = stored_config(world.server, town["id"])
    assert (cfg["owner_type"], cfg["owner_user_id"], cfg["owner_id"], cfg["created_by_user_id"]) == (
        "user",
        owner,
        owner,
        owner,
    )
    assert "organization_id" not in cfg
    assert query(client, "getTown", {"townId": town["id"]})["forked_from"]["town_id"] == source
    assert [r["town_id"] for r in result["rigs"]] == [town["id"]]


def assert_org_fork(
    world: World, client: httpx.Client, result: dict[str, Any], org: str, caller: str, source: str
) -> None:
    town = result["town"]
    assert set(town) == {
        "id",
        "name",
        "owner_org_id",
        "created_by_user_id",
        "owner_user_id",
        "created_at",
        "updated_at",
        "forked_from",
    }
    assert (town["owner_org_id"], town["created_by_user_id"], town["owner_user_id"]) == (org, caller, caller)
    assert town["forked_from"]["town_id"] == source
    listed = [t for t in query(client, "listOrgTowns", {"organizationId": org}) if t["id"] == town["id"]]
    assert listed == [town]
    assert town["id"] not in {t["id"] for t in query(client, "listTowns")}, (
        "an org fork must not land in the caller's account"
    )
    cfg = stored_config(world.server, town["id"])
    assert (cfg["owner_type"], cfg["owner_id"], cfg["organization_id"], cfg["created_by_user_id"]) == (
        "org",
        org,
        org,
        caller,
    )


# -- personal -> personal ---------------------------------------------------------------------


def test_owner_forks_personal_town_into_own_account(world: World) -> None:
    result = fork(world.alice, world.personal)
    assert_personal_fork(world, world.alice, result, world.ids["alice"], world.personal)
    assert result["copied"]["beads"] == 1 and result["copied"]["rigs"] == 1


def test_stranger_cannot_fork_personal_town_and_learns_nothing(world: World) -> None:
    assert denied(world.server, fork, world.sam, world.personal) == "NOT_FOUND"


def test_admin_may_read_but_not_fork_someone_elses_personal_town(world: World) -> None:
    query(world.admin, "getTown", {"townId": world.personal})  # read access is there
    assert denied(world.server, fork, world.admin, world.personal) == "FORBIDDEN"
    assert denied(world.server, fork_org, world.admin, world.personal, ORG_B) == "FORBIDDEN"
    assert query(world.admin, "listTowns") == []


# -- personal -> org --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "owner"])
def test_source_owner_forks_personal_town_into_org_where_member_or_owner(world: World, role: str) -> None:
    client = world.alice if role == "member" else world.alice_target_owner
    result = fork_org(client, world.personal, ORG_B)
    assert_org_fork(world, client, result, ORG_B, world.ids["alice"], world.personal)


def test_billing_manager_of_target_org_may_not_fork_into_it(world: World) -> None:
    assert denied(world.server, fork_org, world.alice_target_billing, world.personal, ORG_B) == "FORBIDDEN"


def test_non_member_of_target_org_may_not_fork_into_it(world: World) -> None:
    assert denied(world.server, fork_org, world.alice_no_org, world.personal, ORG_B) == "FORBIDDEN"


def test_target_member_who_does_not_own_personal_source_gets_not_found(world: World) -> None:
    assert denied(world.server, fork_org, world.sam, world.personal, ORG_B) == "NOT_FOUND"


# -- org -> personal --------------------------------------------------------------------------


def test_org_member_forks_org_town_into_own_account(world: World) -> None:
    result = fork(world.mary, world.org_town)
    assert_personal_fork(world, world.mary, result, world.ids["mary"], world.org_town)
    assert result["town"]["id"] not in {
        t["id"] for t in query(world.mary, "listOrgTowns", {"organizationId": ORG_A})
    }


def test_org_owner_forks_org_town_into_own_account(world: World) -> None:
    result = fork(world.olga, world.org_town)
    assert_personal_fork(world, world.olga, result, world.ids["olga"], world.org_town)


def test_billing_manager_of_source_org_gets_not_found(world: World) -> None:
    assert denied(world.server, fork, world.bill, world.org_town) == "NOT_FOUND"
    assert denied(world.server, fork_org, world.bill, world.org_town, ORG_B) == "NOT_FOUND"


def test_stranger_cannot_fork_org_town(world: World) -> None:
    assert denied(world.server, fork, world.sam, world.org_town) == "NOT_FOUND"


def test_admin_may_not_fork_org_town(world: World) -> None:
    query(world.admin, "getTown", {"townId": world.org_town})
    assert denied(world.server, fork, world.admin, world.org_town) == "FORBIDDEN"


# -- org -> org -------------------------------------------------------------------------------


def test_member_of_both_orgs_forks_across_orgs(world: World) -> None:
    result = fork_org(world.mary, world.org_town, ORG_B)
    assert_org_fork(world, world.mary, result, ORG_B, world.ids["mary"], world.org_town)
    assert result["town"]["id"] not in {
        t["id"] for t in query(world.mary, "listOrgTowns", {"organizationId": ORG_A})
    }


def test_member_forks_org_town_within_the_same_org(world: World) -> None:
    result = fork_org(world.mary, world.org_town, ORG_A)
    assert_org_fork(world, world.mary, result, ORG_A, world.ids["mary"], world.org_town)


def test_member_of_source_org_only_may_not_fork_into_another_org(world: World) -> None:
    assert denied(world.server, fork_org, world.mike, world.org_town, ORG_B) == "FORBIDDEN"


# -- input validation -------------------------------------------------------------------------


def test_unknown_input_field_is_bad_request(world: World) -> None:
    before = town_files(world.server)
    body = {"sourceTownId": world.personal, "newTownName": "x", "includeSecrets": True}
    err = error_of(mutate, world.alice, "forkTown", body)
    assert (err.status, err.code) == (400, "BAD_REQUEST")
    assert "includeSecrets" in err.message
    assert town_files(world.server) == before


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_new_town_name_out_of_range_is_bad_request_naming_the_field(world: World, name: str) -> None:
    before = town_files(world.server)
    err = error_of(mutate, world.alice, "forkTown", {"sourceTownId": world.personal, "newTownName": name})
    assert (err.status, err.code) == (400, "BAD_REQUEST")
    assert "$.newTownName" in err.message
    assert town_files(world.server) == before


def test_new_town_name_of_64_characters_is_accepted(world: World) -> None:
    result = mutate(
        world.alice, "forkTown", {"sourceTownId": world.personal, "newTownName": "n" * 64, "dryRun": True}
    )
    assert result["town"] is None


def test_fork_org_town_without_organization_id_is_bad_request(world: World) -> None:
    err = error_of(mutate, world.alice, "forkOrgTown", {"sourceTownId": world.personal, "newTownName": "x"})
    assert (err.status, err.code) == (400, "BAD_REQUEST")
    assert "organizationId" in err.message


def test_idempotency_key_out_of_range_is_bad_request(world: World) -> None:
    for key in ("", "k" * 129):
        body = {"sourceTownId": world.personal, "newTownName": "x", "idempotencyKey": key}
        err = error_of(mutate, world.alice, "forkTown", body)
        assert err.code == "BAD_REQUEST" and "$.idempotencyKey" in err.message


# -- JSON-RPC 2.0 on /rpc ---------------------------------------------------------------------


def _rpc(client: httpx.Client, params: Any, method: str = "gastown.forkTown") -> httpx.Response:
    return client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def test_fork_over_json_rpc_returns_the_fork_result(world: World) -> None:
    response = _rpc(world.alice, {"sourceTownId": world.personal, "newTownName": "via json-rpc"})
    assert response.status_code == 200
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 1 and "error" not in body
    result = body["result"]
    assert set(result) >= {"town", "rigs", "rigIdMapping", "copied", "skipped", "warnings", "forked_from"}
    assert result["town"]["name"] == "via json-rpc"
    assert result["copied"]["beads"] == 1
    assert result["rigIdMapping"] == {
        query(world.alice, "listRigs", {"townId": world.personal})[0]["id"]: result["rigs"][0]["id"]
    }
    assert result["town"]["id"] in {t["id"] for t in query(world.alice, "listTowns")}


def test_fork_org_town_over_json_rpc(world: World) -> None:
    params = {"sourceTownId": world.org_town, "newTownName": "org via rpc", "organizationId": ORG_B}
    body = _rpc(world.mary, params, "gastown.forkOrgTown").json()
    assert body["result"]["town"]["owner_org_id"] == ORG_B


@pytest.mark.parametrize(
    "params",
    [
        {"sourceTownId": "not-a-uuid", "newTownName": "x"},
        {"newTownName": "x"},
        {"sourceTownId": str(uuid.uuid4()), "newTownName": ""},
        {"sourceTownId": str(uuid.uuid4()), "newTownName": "x", "surprise": 1},
    ],
)
def test_bad_fork_params_over_json_rpc_are_invalid_params(world: World, params: dict[str, Any]) -> None:
    before = town_files(world.server)
    body = _rpc(world.alice, params).json()
    assert body["id"] == 1
    assert body["error"]["code"] == -32602, body
    assert town_files(world.server) == before


def test_access_errors_over_json_rpc_use_the_trpc_codes(world: World) -> None:
    body = _rpc(world.sam, {"sourceTownId": world.personal, "newTownName": "nope"}).json()
    assert body["error"]["code"] == -32004
    assert body["error"]["data"]["code"] == "NOT_FOUND"
    body = _rpc(world.admin, {"sourceTownId": world.personal, "newTownName": "nope"}).json()
    assert body["error"]["data"]["code"] == "FORBIDDEN"
