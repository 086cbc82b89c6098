"""Objects as actors on two storage nodes: placed on both, files on their node, calls served."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ray.cluster import RayTestCluster, actor, own_server, start_ray_server, wait_for, where
from tests.server import RunningServer
from tests.trpc import mutate, query

pytestmark = pytest.mark.ray


server = own_server("ray-placement")


def test_towns_are_placed_on_both_nodes_with_their_files_there(server: RunningServer) -> None:
    alice = server.client(server.token("alice-placement"))
    towns = [mutate(alice, "createTown", {"name": f"Town {i}"})["id"] for i in range(16)]
    placed: dict[str, str] = {}
    for town_id in towns:
        node, path = where(server, "TownDO", town_id)
        assert path == server.data_dir / node / "TownDO" / f"{town_id}.sqlite3"
        assert path.exists()
        placed[town_id] = node
    assert set(placed.values()) == {"a", "b"}, placed
    listed = {t["id"] for t in query(alice, "listTowns")}
    assert listed == set(towns)
    for town_id in towns:
        assert query(alice, "getTown", {"townId": town_id})["id"] == town_id


def test_an_idle_actor_retires_and_its_object_comes_back_with_its_data(
    ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    server = start_ray_server(tmp_path / "data", ray_cluster, extra_env={"GASTOWN_RAY_IDLE_SECONDS": "1"})
    try:
        alice = server.client(server.token("alice-idle"))
        town = mutate(alice, "createTown", {"name": "Sleepy"})["id"]
        mutate(alice, "updateTownConfig", {"townId": town, "config": {"max_polecats_per_rig": 3}})
        node, path = where(server, "TownDO", town)
        wait_for(lambda: not _alive(server, town), what="the idle town's actor to retire")
        # The server still holds the retired actor's handle: the call is not lost on it.
        assert query(alice, "getTownConfig", {"townId": town})["max_polecats_per_rig"] == 3
        assert where(server, "TownDO", town) == (node, path)
    finally:
        server.stop()


def _alive(server: RunningServer, town: str) -> bool:
    try:
        actor(server, "TownDO", town)
    except ValueError:
        return False
    return True
