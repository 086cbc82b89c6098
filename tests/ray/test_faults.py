"""Faults on the Ray backend: an object's actor killed (idle, mid-call), a storage node lost
and brought back. Nothing acknowledged is lost; what is down says so (SERVICE_UNAVAILABLE)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from dos.placement import rendezvous
from dos.town_do import TownDO
from tests.ray.cluster import RayTestCluster, actor, own_server, wait_for, where
from tests.server import RunningServer
from tests.trpc import TrpcError, error_of, mutate, query

pytestmark = pytest.mark.ray


server = own_server("ray-faults")


def user_on(node: str) -> str:
    """A user id whose GastownUserDO the placement policy puts on `node` (both nodes alive)."""
    while True:
        user_id = f"user-{uuid.uuid4().hex[:10]}"
        if rendezvous(f"GastownUserDO/{user_id}", ["a", "b"]) == node:
            return user_id


def town_with_a_bead(client: httpx.Client) -> tuple[str, str, str]:
    town = mutate(client, "createTown", {"name": "Faulty"})["id"]
    rig = mutate(client, "createRig", {"townId": town, "name": "core", "gitUrl": "https://github.com/acme/core.git"})["id"]
    bead = mutate(client, "createBead", {"rigId": rig, "title": "survives"})["bead_id"]
    return town, rig, bead


def test_an_actor_killed_while_idle_comes_back_on_its_node_with_its_data(server: RunningServer) -> None:
    alice = server.client(server.token(user_on("a")))
    town, rig, bead = town_with_a_bead(alice)
    before = where(server, "TownDO", town)
    pid = ray.get(actor(server, "TownDO", town).pid.remote())
    ray.kill(actor(server, "TownDO", town), no_restart=False)
    # A call that meets the actor restarting answers SERVICE_UNAVAILABLE (Ray cannot say
    # whether it ran, so it is not repeated behind the caller's back); a retry is served.
    rows = wait_for(lambda: _beads_or_none(alice, rig), what="the restarted town to serve")
    assert [b["bead_id"] for b in rows] == [bead]
    assert where(server, "TownDO", town) == before
    assert ray.get(actor(server, "TownDO", town).pid.remote()) != pid  # a new process, same file


def test_an_actor_killed_mid_call_comes_back_on_its_node_with_its_data(server: RunningServer, tmp_path: Path) -> None:
    """A long write (a bulk history load, one transaction) is cut off by killing the actor
    after its first chunk: the call fails, nothing of it is kept, the rest is all there."""
    user = user_on("a")
    alice = server.client(server.token(user))
    town, rig, bead = town_with_a_bead(alice)
    node, path = where(server, "TownDO", town)
    config = query(alice, "getTownConfig", {"townId": town})
    flag = tmp_path / "first-chunk-written"
    handle = actor(server, "TownDO", town)
    call = handle.call.remote(
        TownDO.populate_demo,
        (),
        {"rig_ids": [rig], "beads": 500_000, "seed": 1, "actor_user_id": user, "progress": _Touch(str(flag))},
        False,
    )
    wait_for(flag.exists, what="the load's first chunk")  # the call is running now
    ray.kill(handle, no_restart=False)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(call, timeout=60)
    rows = wait_for(lambda: _beads_or_none(alice, rig), what="the restarted town to serve")
    assert [b["bead_id"] for b in rows] == [bead]  # the cut-off load left nothing
    assert query(alice, "getTownConfig", {"townId": town}) == config
    assert where(server, "TownDO", town) == (node, path)


class _Touch:
    """A picklable progress callback: creates a file (the test process watches for it)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, done: int) -> None:
        Path(self.path).touch()


def test_a_lost_node_makes_its_objects_unavailable_and_the_rest_serve(
    server: RunningServer, ray_cluster: RayTestCluster
) -> None:
    alice = server.client(server.token(user_on("a")))
    made: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": []}
    while not (made["a"] and made["b"]):
        town = town_with_a_bead(alice)
        made[where(server, "TownDO", town[0])[0]].append(town)
    on_a, on_b = made["a"][0], made["b"][0]
    ray_cluster.remove("b")
    try:
        assert [b["bead_id"] for b in query(alice, "listBeads", {"rigId": on_a[1]})] == [on_a[2]]
        err = error_of(query, alice, "listBeads", {"rigId": on_b[1]})
        assert (err.code, err.status) == ("SERVICE_UNAVAILABLE", 503)
        assert "not available" in err.message
        # New objects go to the nodes that are up.
        fresh = town_with_a_bead(alice)
        assert where(server, "TownDO", fresh[0])[0] == "a"
    finally:
        ray_cluster.add("b")
    # Back: served again, from the same file, nothing lost.
    rows = wait_for(lambda: _beads_or_none(alice, on_b[1]), what="the town on node b to serve again")
    assert [b["bead_id"] for b in rows] == [on_b[2]]
    assert where(server, "TownDO", on_b[0])[0] == "b"


def _beads_or_none(client: httpx.Client, rig: str) -> list[dict[str, Any]] | None:
    try:
        return list(query(client, "listBeads", {"rigId": rig}))
    except TrpcError as exc:
        if exc.code != "SERVICE_UNAVAILABLE":
            raise
        return None
