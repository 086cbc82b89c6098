from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray

from tests.ray.cluster import RayTestCluster, start_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayTestCluster]:
    """One two-node cluster (storage nodes `a`, the head, and `b`) for every Ray test."""
    cluster = start_cluster()
    yield cluster
    ray.shutdown()
    cluster.cluster.shutdown()
