"""scripts/move_object.py: an object moves to the other storage node with all its data."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.ray.cluster import RayTestCluster, namespace_of, where
from tests.ray.test_faults import town_with_a_bead, user_on
from tests.server import ROOT, RunningServer
from tests.trpc import mutate, query

pytestmark = pytest.mark.ray


def move(server: RunningServer, cluster: RayTestCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RAY_ADDRESS": cluster.address,
        "GASTOWN_DATA_DIR": str(server.data_dir),
        "GASTOWN_RAY_NAMESPACE": namespace_of(server),
    }
    return subprocess.run(
        [sys.executable, "scripts/move_object.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_town_moves_to_the_other_node_with_all_its_data(server: RunningServer, ray_cluster: RayTestCluster) -> None:
    alice = server.client(server.token(user_on("a")))
    town, rig, bead = town_with_a_bead(alice)
    mutate(alice, "updateTownConfig", {"townId": town, "config": {"env_vars": {"SECRET": "sk-moved-0001"}}})
    config = query(alice, "getTownConfig", {"townId": town})
    old_node, old_path = where(server, "TownDO", town)
    new_node = "b" if old_node == "a" else "a"

    result = move(server, ray_cluster, "TownDO", town, new_node)
    assert result.returncode == 0, result.stderr
    assert f"from {old_node} to {new_node}" in result.stdout

    assert [b["bead_id"] for b in query(alice, "listBeads", {"rigId": rig})] == [bead]
    assert query(alice, "getTownConfig", {"townId": town}) == config
    node, path = where(server, "TownDO", town)
    assert node == new_node and path.exists()
    assert not old_path.exists()
    # And it keeps taking writes there.
    second = mutate(alice, "createBead", {"rigId": rig, "title": "after the move"})["bead_id"]
    assert {b["bead_id"] for b in query(alice, "listBeads", {"rigId": rig})} == {bead, second}
    again = move(server, ray_cluster, "TownDO", town, new_node)
    assert again.returncode == 0 and "already on" in again.stdout


def test_moving_an_unknown_object_is_a_clear_error(server: RunningServer, ray_cluster: RayTestCluster) -> None:
    result = move(server, ray_cluster, "TownDO", "no-such-town", "b")
    assert result.returncode == 1
    assert "has no file to move" in result.stderr
