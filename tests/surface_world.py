"""A seeded world for the end-to-end surface tests (tests/e2e/test_access_surface.py and
test_surface_behaviour.py): a personal town and an org town, each with two rigs and a
realistic history with agents, convoys, merge requests and events.

Agents and convoys cannot be created through the API, so the world is built in three steps
(README: tools may write the databases only while the server is stopped):

1. a dedicated server: towns and rigs through the API;
2. server stopped: `town.demo.populate_town` (the demo/seed generator) fills each town file,
   and the unfinished convoys are marked staged (the generator stages few at random);
3. a new server on the same data directory serves the tests.

The callers are those of tests/e2e/test_access.py: personal owner alice, org owner olga, org
member mike (creates the org town), member mary, billing manager bill, platform admin root,
stranger sam.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import apsw
import httpx

from tests.fork_fixtures import read_db
from tests.server import RunningServer, start_server
from tests.trpc import mutate, query
from town.demo import populate_town

CALLERS = ("alice", "olga", "mike", "mary", "bill", "root", "sam")
TOWN_KEYS = ("personal", "org")
BEADS_PER_TOWN = 200
# Different generator seeds: the two towns must not share bead ids.
SEEDS = {"personal": 4, "org": 6}
RIG_NAMES = ("web", "api")


@dataclass
class SeededTown:
    key: str  # "personal" | "org"
    id: str
    owner: str  # the caller who created it (alice / mike)
    rigs: dict[str, str]  # rig name -> rig id
    file: Path

    @property
    def rig(self) -> str:
        """The main rig (`web`)."""
        return self.rigs["web"]


@dataclass
class SurfaceWorld:
    server: RunningServer
    org_id: str
    towns: dict[str, SeededTown]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, caller: str) -> httpx.Client:
        return self.clients[caller]

    def token(self, caller: str) -> str:
        if caller == "root":
            return self.server.token("root", is_admin=True, gastown_access=False)
        role = {"olga": "owner", "mike": "member", "mary": "member", "bill": "billing_manager"}.get(caller)
        return self.server.token(caller, orgs={self.org_id: role} if role else None)

    def owner_of(self, key: str) -> httpx.Client:
        return self.client(self.towns[key].owner)

    def sql(self, key: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the town's file (a WAL reader: fine while the server owns it)."""
        conn = read_db(self.towns[key].file)
        try:
            return [tuple(r) for r in conn.execute(statement, params)]
        finally:
            conn.close()

    def scalar(self, key: str, statement: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.sql(key, statement, params)
        return rows[0][0] if rows else None


def call(client: httpx.Client, kind: str, name: str, input: Any) -> httpx.Response:
    """One raw tRPC HTTP call (GET for queries, POST for mutations): the response as is."""
    path = f"/trpc/gastown.{name}"
    if kind == "query":
        return client.get(path + ("" if input is None else "?input=" + quote(json.dumps(input))))
    content = b"" if input is None else json.dumps(input).encode()
    return client.post(path, content=content, headers={"content-type": "application/json"})


def stage_unfinished_convoys(conn: apsw.Connection) -> None:
    conn.execute(
        "UPDATE convoy_metadata SET staged = 1 WHERE bead_id IN"
        " (SELECT bead_id FROM beads WHERE type = 'convoy' AND status NOT IN ('closed', 'failed'))"
    )


def build_world(data_dir: Path) -> Iterator[SurfaceWorld]:
    org_id = str(uuid.uuid4())
    first = start_server(data_dir)
    try:
        probe = SurfaceWorld(first, org_id, {})
        alice = first.client(probe.token("alice"))
        mike = first.client(probe.token("mike"))
        personal = mutate(alice, "createTown", {"name": "Alice's town"})["id"]
        org_town = mutate(mike, "createOrgTown", {"organizationId": org_id, "name": "Org town"})["id"]
        towns: dict[str, SeededTown] = {}
        for key, client, town_id, owner in (
            ("personal", alice, personal, "alice"),
            ("org", mike, org_town, "mike"),
        ):
            rigs = {
                name: mutate(
                    client,
                    "createRig",
                    {"townId": town_id, "name": name, "gitUrl": f"https://github.com/acme/{name}.git"},
                )["id"]
                for name in RIG_NAMES
            }
            mutate(
                client,
                "updateTownConfig",
                {"townId": town_id, "config": {"env_vars": {"SECRET": "sk-live-abcdef123456"}}},
            )
            towns[key] = SeededTown(key, town_id, owner, rigs, data_dir / "TownDO" / f"{town_id}.sqlite3")
        alice.close()
        mike.close()
    finally:
        first.stop()

    for key, town in towns.items():
        conn = apsw.Connection(str(town.file))
        try:
            with conn:
                populate_town(
                    conn,
                    rig_ids=list(town.rigs.values()),
                    beads=BEADS_PER_TOWN,
                    events_per_bead=3,
                    seed=SEEDS[key],
                    actor_user_id=town.owner,
                    town_id=town.id,
                )
                stage_unfinished_convoys(conn)
        finally:
            conn.close()

    server = start_server(data_dir)
    world = SurfaceWorld(server, org_id, towns)
    try:
        world.clients = {name: server.client(world.token(name)) for name in CALLERS}
        for key in TOWN_KEYS:  # open each town once, so later reads find it settled
            query(world.owner_of(key), "getTownConfig", {"townId": towns[key].id})
        yield world
    finally:
        for client in world.clients.values():
            client.close()
        server.stop()
