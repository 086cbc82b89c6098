"""A real two-node Ray cluster on this machine (ray.cluster_utils.Cluster) for the Ray backend
tests, and servers started on it (GASTOWN_RUNTIME=ray)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from dos.placement import NODE_RESOURCE_PREFIX
from tests.server import RunningServer, start_server

NODE_NAMES = ("a", "b")
# Enough of the custom resource for any number of actors (they ask for none of it: the
# resource only names the node; actors are pinned by node id).
NODE_RESOURCE_UNITS = 1000


def node_args(name: str) -> dict[str, Any]:
    return {"num_cpus": 2, "resources": {f"{NODE_RESOURCE_PREFIX}{name}": NODE_RESOURCE_UNITS}}


@dataclass
class RayTestCluster:
    cluster: Cluster
    nodes: dict[str, Any] = field(default_factory=dict)  # storage name -> ray node handle

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def remove(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)
        wait_for(lambda: name not in alive_storage_nodes(), what=f"node {name} to be seen as dead")

    def add(self, name: str) -> None:
        self.nodes[name] = self.cluster.add_node(**node_args(name))
        self.cluster.wait_for_nodes()
        wait_for(lambda: name in alive_storage_nodes(), what=f"node {name} to be alive")


def start_cluster() -> RayTestCluster:
    # The workers of this cluster run this venv's Python and import this checkout.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    cluster = Cluster(initialize_head=True, head_node_args=node_args(NODE_NAMES[0]))
    test = RayTestCluster(cluster, {NODE_NAMES[0]: cluster.head_node})
    for name in NODE_NAMES[1:]:
        test.nodes[name] = cluster.add_node(**node_args(name))
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
    return test


def alive_storage_nodes() -> set[str]:
    from dos.placement import storage_nodes

    return set(storage_nodes(ray.nodes()))


def wait_for(check: Any, *, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_ray_server(
    root: Path, cluster: RayTestCluster, *, namespace: str | None = None, extra_env: dict[str, str] | None = None
) -> RunningServer:
    """A server on the cluster; its objects live under <root>/<node>/ in a Ray namespace of its own."""
    env = {
        "GASTOWN_RUNTIME": "ray",
        "RAY_ADDRESS": cluster.address,
        "GASTOWN_RAY_NAMESPACE": namespace or f"gastown-test-{uuid.uuid4().hex[:8]}",
        "GASTOWN_RAY_IDLE_SECONDS": "60",
        **(extra_env or {}),
    }
    return start_server(root, extra_env=env)


def own_server(label: str) -> Any:
    """A module's own Ray-backed server (its own data dir and Ray namespace), as its `server`
    fixture: `server = own_server("ray-faults")`."""

    @pytest.fixture(scope="module")
    def server(ray_cluster: RayTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
        running = start_ray_server(tmp_path_factory.mktemp(label) / "data", ray_cluster)
        yield running
        running.stop()

    return server


def namespace_of(server: RunningServer) -> str:
    return server.env["GASTOWN_RAY_NAMESPACE"]


def actor(server: RunningServer, cls: str, object_id: str) -> Any:
    return ray.get_actor(f"{cls}/{object_id}", namespace=namespace_of(server))


def where(server: RunningServer, cls: str, object_id: str) -> tuple[str, Path]:
    """(node, file) of a live object's actor."""
    node, path = ray.get(actor(server, cls, object_id).where.remote(), timeout=30)
    return str(node), Path(path)


def runtime_of(server: RunningServer) -> Any:
    """The server's Ray runtime, from this process: the same actors, the same directory."""
    from dos.ray_runtime import RayRuntime

    return RayRuntime(server.data_dir, ray_namespace=namespace_of(server), idle_seconds=60)


def seed_town(server: RunningServer, user_id: str, *, beads: int, events_per_bead: int = 5) -> str:
    """A published town with rigs, config and `beads` beads of history, built through the
    server's own objects (dos.demo.build_town, the flow scripts/seed_town.py uses)."""
    import asyncio

    from dos import lifecycle
    from dos.demo import build_town
    from rpc.auth import mint_token

    async def build() -> str:
        runtime = runtime_of(server)
        try:
            return await build_town(
                runtime,
                lambda user: mint_token(server.secret, user),
                owner=lifecycle.Owner("user", user_id, user_id),
                name=f"Seeded ({beads} beads)",
                beads=beads,
                events_per_bead=events_per_bead,
                seed=7,
            )
        finally:
            await runtime.close()

    return asyncio.run(build())
