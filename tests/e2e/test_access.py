"""The access table of rpc.md §3, through the real server, for every kind of caller."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.server import RunningServer
from tests.trpc import error_of, mutate, query

ORG = str(uuid.uuid4())
RIG_URL = "https://github.com/example/repo.git"


class World:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        tok = server.token
        self.alice = server.client(tok("alice"))  # personal owner
        self.olga = server.client(tok("olga", orgs={ORG: "owner"}))
        self.mike = server.client(tok("mike", orgs={ORG: "member"}))  # creates the org town
        self.mary = server.client(tok("mary", orgs={ORG: "member"}))
        self.bill = server.client(tok("bill", orgs={ORG: "billing_manager"}))
        self.admin = server.client(tok("root", is_admin=True, gastown_access=False))
        self.sam = server.client(tok("sam"))
        self.personal = mutate(self.alice, "createTown", {"name": "Alice's town"})["id"]
        self.org_town = mutate(self.mike, "createOrgTown", {"organizationId": ORG, "name": "Org town"})["id"]
        for client, town in ((self.alice, self.personal), (self.mike, self.org_town)):
            mutate(client, "updateTownConfig", {"townId": town, "config": {"env_vars": {"SECRET": "sk-live-abcdef123456"}}})


@pytest.fixture(scope="module")
def world(server: RunningServer) -> World:
    return World(server)


def can_read(client: httpx.Client, town: str) -> bool:
    try:
        query(client, "getTown", {"townId": town})
        return True
    except Exception as exc:  # noqa: BLE001 - we assert on the code below
        assert getattr(exc, "code", None) == "NOT_FOUND", exc
        return False


def code_of_write(client: httpx.Client, town: str) -> str:
    try:
        mutate(client, "createRig", {"townId": town, "name": f"rig-{uuid.uuid4().hex[:8]}", "gitUrl": RIG_URL})
        return "OK"
    except Exception as exc:  # noqa: BLE001
        return exc.code  # type: ignore[attr-defined]


def code_of_configure(client: httpx.Client, town: str) -> str:
    try:
        mutate(client, "updateTownConfig", {"townId": town, "config": {"max_polecats_per_rig": 3}})
        return "OK"
    except Exception as exc:  # noqa: BLE001
        return exc.code  # type: ignore[attr-defined]


def secret_seen(client: httpx.Client, town: str) -> str:
    return query(client, "getTownConfig", {"townId": town})["env_vars"]["SECRET"]


def test_personal_town_owner_may_do_everything(world: World) -> None:
    assert can_read(world.alice, world.personal)
    assert code_of_write(world.alice, world.personal) == "OK"
    assert code_of_configure(world.alice, world.personal) == "OK"
    assert secret_seen(world.alice, world.personal) == "sk-live-abcdef123456"


def test_strangers_and_other_users_do_not_learn_a_town_exists(world: World) -> None:
    for client in (world.sam, world.mike, world.olga):
        assert not can_read(client, world.personal)
        assert code_of_write(client, world.personal) == "NOT_FOUND"
    for client in (world.sam, world.alice, world.bill):
        assert not can_read(client, world.org_town)
        assert code_of_configure(client, world.org_town) == "NOT_FOUND"


def test_admin_reads_everything_masked_and_changes_nothing(world: World) -> None:
    for town in (world.personal, world.org_town):
        assert can_read(world.admin, town)
        assert secret_seen(world.admin, town) == "****3456"
        assert code_of_write(world.admin, town) == "FORBIDDEN"
        assert code_of_configure(world.admin, town) == "FORBIDDEN"
        assert error_of(mutate, world.admin, "deleteTown", {"townId": town}).code == "FORBIDDEN"


def test_org_roles(world: World) -> None:
    town = world.org_town
    # owner: everything
    assert code_of_write(world.olga, town) == "OK"
    assert code_of_configure(world.olga, town) == "OK"
    assert secret_seen(world.olga, town) == "sk-live-abcdef123456"
    # creator (a member): configure and see secrets, but not delete
    assert code_of_configure(world.mike, town) == "OK"
    assert secret_seen(world.mike, town) == "sk-live-abcdef123456"
    assert error_of(mutate, world.mike, "deleteOrgTown", {"organizationId": ORG, "townId": town}).code == "FORBIDDEN"
    # another member: read and write, secrets masked, no configure
    assert code_of_write(world.mary, town) == "OK"
    assert code_of_configure(world.mary, town) == "FORBIDDEN"
    assert secret_seen(world.mary, town) == "****3456"
    # billing manager: not even readable
    assert not can_read(world.bill, town)


def test_org_level_procedures_need_a_membership(world: World) -> None:
    listed = query(world.mary, "listOrgTowns", {"organizationId": ORG})
    assert world.org_town in [t["id"] for t in listed]
    assert error_of(query, world.bill, "listOrgTowns", {"organizationId": ORG}).code == "FORBIDDEN"
    assert error_of(query, world.sam, "listOrgTowns", {"organizationId": ORG}).code == "FORBIDDEN"
    assert error_of(mutate, world.bill, "createOrgTown", {"organizationId": ORG, "name": "x"}).code == "FORBIDDEN"
    assert error_of(mutate, world.admin, "createOrgTown", {"organizationId": ORG, "name": "x"}).code == "FORBIDDEN"


def test_org_town_through_the_wrong_org_is_not_found(world: World, server: RunningServer) -> None:
    other_org = str(uuid.uuid4())
    both = server.client(server.token("olga", orgs={ORG: "owner", other_org: "owner"}))
    err = error_of(query, both, "listOrgRigs", {"organizationId": other_org, "townId": world.org_town})
    assert err.code == "NOT_FOUND"


def test_tokens(server: RunningServer, world: World) -> None:
    no_token = server.client(None)
    assert error_of(query, no_token, "listTowns").code == "UNAUTHORIZED"
    bad = server.client("not-a-jwt")
    assert error_of(query, bad, "listTowns").status == 401
    expired = server.client(__import__("rpc.auth", fromlist=["mint_token"]).mint_token(server.secret, "alice", ttl_seconds=-10))
    assert error_of(query, expired, "listTowns").code == "UNAUTHORIZED"
    no_access = server.client(server.token("alice", gastown_access=False))
    err = error_of(query, no_access, "listTowns")
    assert (err.code, err.message) == ("FORBIDDEN", "Gastown access required")
    wrong_secret = server.client(__import__("rpc.auth", fromlist=["mint_token"]).mint_token("another-secret-that-is-32-bytes-long!!", "alice"))
    assert error_of(query, wrong_secret, "listTowns").code == "UNAUTHORIZED"
