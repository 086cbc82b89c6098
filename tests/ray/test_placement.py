"""Objects as actors on two storage nodes: placed on both, files on their node, calls served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ray.cluster import RayTestCluster, start_ray_server, where
from tests.server import RunningServer
from tests.trpc import mutate, query

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def server(ray_cluster: RayTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_ray_server(tmp_path_factory.mktemp("ray-placement") / "data", ray_cluster)
    yield running
    running.stop()


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
