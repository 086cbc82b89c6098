"""HTTP on Ray Serve: `python -m rpc.serve_ray` (what `scripts/serve --ray` runs) on the test
cluster, two replicas, both answering, each stateless above dos/ (one sees what the other wrote)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import quote

import pytest

from tests.ray.cluster import RayTestCluster
from tests.server import RunningServer, start_server
from tests.trpc import mutate, query

pytestmark = pytest.mark.ray

STREAMS = 8  # more than one replica's max_ongoing_requests (5)


@pytest.fixture(scope="module")
def served(ray_cluster: RayTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "GASTOWN_SERVE_REPLICAS": "2",
        "GASTOWN_RAY_NAMESPACE": f"gastown-serve-{uuid.uuid4().hex[:8]}",
        "RAY_ADDRESS": ray_cluster.address,
    }
    # (Serve starts its proxy and both replicas first: slower than a plain server.)
    running = start_server(
        tmp_path_factory.mktemp("ray-serve") / "data", extra_env=env, module="rpc.serve_ray", startup_timeout=180
    )
    yield running
    running.stop()


def test_two_replicas_answer_and_share_the_objects(served: RunningServer) -> None:
    alice = served.client(served.token("alice-serve"))
    town = mutate(alice, "createTown", {"name": "Served"})["id"]
    assert [t["id"] for t in query(alice, "listTowns")] == [town]
    # Event streams stay open, each holding a slot of its replica (Serve's max_ongoing_requests,
    # 5 by default): with more streams than one replica takes, both must be answering.
    url = "/trpc/gastown.watchTownEvents?input=" + quote(json.dumps({"townId": town, "pollMs": 1000}))
    with ExitStack() as streams:
        replicas = set()
        for _ in range(STREAMS):
            client = streams.enter_context(served.client(served.token("alice-serve")))
            response = streams.enter_context(client.stream("GET", url, headers={"accept": "text/event-stream"}))
            assert response.status_code == 200
            replicas.add(response.headers["x-gastown-replica"])
        # While the streams hold the replicas, a plain call is still answered, by one of them.
        listed = alice.get("/trpc/gastown.listTowns")
        assert listed.headers["x-gastown-replica"] in replicas
    assert len(replicas) == 2, replicas
    forked = mutate(alice, "forkTown", {"sourceTownId": town, "newTownName": "Served fork", "idempotencyKey": "k1"})
    assert {t["id"] for t in query(alice, "listTowns")} == {town, forked["town"]["id"]}
    assert mutate(alice, "forkTown", {"sourceTownId": town, "newTownName": "Served fork", "idempotencyKey": "k1"}) == forked
