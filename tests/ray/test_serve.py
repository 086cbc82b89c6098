"""HTTP on Ray Serve: `python -m rpc.serve_ray` (what `scripts/serve --ray` runs) on the test
cluster, two replicas, both answering, each stateless above dos/ (one sees what the other wrote)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import quote

import httpx
import pytest

from tests.ray.cluster import RayTestCluster
from tests.server import ROOT, TEST_SECRET, RunningServer, free_port
from tests.trpc import mutate, query

pytestmark = pytest.mark.ray

STREAMS = 8  # more than one replica's max_ongoing_requests (5)


@pytest.fixture(scope="module")
def served(ray_cluster: RayTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("ray-serve")
    data = root / "data"
    data.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASTOWN_")}
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "GASTOWN_DATA_DIR": str(data),
            "NEXTAUTH_SECRET": TEST_SECRET,
            "GASTOWN_DEMO": "0",
            "GASTOWN_SERVE_REPLICAS": "2",
            "GASTOWN_RAY_NAMESPACE": f"gastown-serve-{uuid.uuid4().hex[:8]}",
            "RAY_ADDRESS": ray_cluster.address,
            "PYTHONUNBUFFERED": "1",
        }
    )
    log_path = root / "serve.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "rpc.serve_ray"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = RunningServer(data_dir=data, port=port, process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rpc.serve_ray exited with {process.returncode}:\n{running.log_text()}")
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        running.stop(signal.SIGKILL)
        raise RuntimeError(f"rpc.serve_ray did not start:\n{running.log_text()}")
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
