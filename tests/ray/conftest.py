from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray

from tests.ray.cluster import RayTestCluster, start_cluster, start_ray_server
from tests.server import RunningServer


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayTestCluster]:
    """One two-node cluster (storage nodes `a`, the head, and `b`) for every Ray test."""
    cluster = start_cluster()
    yield cluster
    ray.shutdown()
    cluster.cluster.shutdown()


@pytest.fixture(scope="session")
def server(ray_cluster: RayTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The Ray backend's counterpart of tests/conftest.py's `server`: the end-to-end modules
    re-run here (tests/ray/test_e2e_*.py) get a server whose objects are actors on the cluster."""
    running = start_ray_server(tmp_path_factory.mktemp("ray-e2e") / "data", ray_cluster)
    yield running
    running.stop()
