"""tests/e2e/test_fork_rules.py again, against the Ray backend: the same scenario (towns through
the API, history written straight into the source's file, a new server forks it) on the
two-node cluster, and the same checks of every fork rule on the files where they landed."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import ray

from tests.e2e.test_fork_rules import *  # noqa: F403 - its tests and fixtures, collected here
from tests.e2e.test_fork_rules import Servers
from tests.ray.cluster import RayTestCluster, start_ray_server
from tests.server import RunningServer

pytestmark = pytest.mark.ray


class RayServers(Servers):
    def __init__(self, cluster: RayTestCluster) -> None:
        self.cluster = cluster
        self.namespace = f"fork-rules-{uuid.uuid4().hex[:8]}"  # both servers share the objects

    def start(self, data: Path, env: dict[str, str]) -> RunningServer:
        return start_ray_server(data, self.cluster, namespace=self.namespace, extra_env=env)

    def release(self, stopped: RunningServer) -> None:
        # The objects are actors that outlive the server: stop them, so the file is written
        # alone; the next server's calls start them again on their nodes.
        def mine() -> list[str]:
            return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == self.namespace]

        for name in mine():
            ray.kill(ray.get_actor(name, namespace=self.namespace), no_restart=True)
        deadline = time.monotonic() + 30
        while mine():
            assert time.monotonic() < deadline, "the stopped server's actors did not go away"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def servers(ray_cluster: RayTestCluster) -> Servers:
    return RayServers(ray_cluster)


def test_the_scenario_ran_on_the_cluster(scenario: Scenario) -> None:  # noqa: F405
    # Every file the checks above read is a storage node's (<data>/<node>/TownDO/...), not a
    # local backend's: the fork ran between actors.
    data = scenario.server.data_dir
    for town_id in (scenario.source_id, scenario.new_id):
        node = scenario.town_file(town_id).relative_to(data).parts[0]
        assert node in ("a", "b"), scenario.town_file(town_id)
    assert scenario.server.env["GASTOWN_RUNTIME"] == "ray"
