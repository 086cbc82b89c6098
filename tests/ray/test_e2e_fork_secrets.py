"""tests/e2e/test_fork_secrets.py again, against the Ray backend: the shared `server` of
tests/ray/conftest.py, and the credential tests' own server on the same two-node cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_fork_secrets import *  # noqa: F403 - its tests and fixtures, collected here
from tests.ray.cluster import RayTestCluster, start_ray_server
from tests.server import RunningServer

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def start_cred_server(ray_cluster: RayTestCluster) -> Callable[[Path, dict[str, str]], RunningServer]:
    return lambda data, env: start_ray_server(data, ray_cluster, extra_env=env)
