"""`bench_rpc.py --runtime ray`: the Ray backend next to the local one, on a two-node
`ray.cluster_utils.Cluster` started here (storage nodes `a` and `b`, one data dir each).

1. getTown (tRPC HTTP GET) req/s and p99: the local backend (`rpc.serve`), the Ray backend
   behind one uvicorn process, and through Ray Serve (`rpc.serve_ray`) with 1 and 2 replicas;
2. the per-call overhead of an actor hop: one object's read, called in a loop in this process,
   through the local `ObjectRuntime` and through the Ray runtime (this process is a Ray driver);
3. a big fork: the local backend, and on Ray with the new town on the source's node and on the
   other node (the source actor streams its export into the new town's actor).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from _support import format_table, percentile, start_server

from dos import lifecycle
from dos.demo import build_town
from dos.placement import NODE_RESOURCE_PREFIX
from dos.runtime import ObjectRuntime
from dos.town_do import TownDO
from rpc.auth import mint_token

USER = "bench-ray-user"


def _cluster() -> Any:
    import ray
    from ray.cluster_utils import Cluster

    def args(name: str) -> dict[str, Any]:
        return {"num_cpus": 2, "resources": {f"{NODE_RESOURCE_PREFIX}{name}": 1000}}

    cluster = Cluster(initialize_head=True, head_node_args=args("a"))
    cluster.add_node(**args("b"))
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="error", log_to_driver=False)
    return cluster


async def _seed(runtime: Any, secret: str, beads: int) -> str:
    town = await build_town(
        runtime,
        lambda user: mint_token(secret, user),
        owner=lifecycle.Owner("user", USER, USER),
        name=f"Bench ({beads} beads)",
        beads=beads,
        events_per_bead=5,
        seed=3,
    )
    return town


def _get_town(url: str, token: str, town: str, args: argparse.Namespace) -> tuple[float, float, int]:
    """(req/s, p99 ms, errors) of getTown with --concurrency workers for --seconds."""
    import bench_rpc

    target = bench_rpc.Target(url, token, town)
    bench_rpc.verify_once(target)
    result = asyncio.run(
        bench_rpc.run_transport("http", target, seconds=args.seconds, warmup=args.warmup, concurrency=args.concurrency)
    )
    return result.rate, percentile(result.latencies, 99) * 1000, result.errors


def _fork_seconds(url: str, token: str, source: str) -> tuple[float, str]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
        started = time.perf_counter()
        response = client.post("/trpc/gastown.forkTown", json={"sourceTownId": source, "newTownName": "Bench fork"})
        elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, str(response.json()["result"]["data"]["town"]["id"])


async def _hop(runtime: Any, town: str, calls: int) -> float:
    """Median seconds of one `TownDO.ownership` call (a plain read, not memoized)."""
    stub = runtime.namespace(TownDO).get(town)
    await stub.call(TownDO.ownership)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.call(TownDO.ownership)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(args: argparse.Namespace) -> int:
    from dos.ray_runtime import RayRuntime

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    secret = secrets.token_urlsafe(32)
    token = mint_token(secret, USER)
    rows: list[list[str]] = []
    lines: list[str] = []
    cluster = None
    servers: list[Any] = []
    try:
        # -- local backend ----------------------------------------------------------------------
        local_data = work / "local"

        async def seed_local() -> tuple[str, float]:
            runtime = ObjectRuntime(local_data)
            try:
                town = await _seed(runtime, secret, args.fork_beads)
                return town, await _hop(runtime, town, args.hop_calls)
            finally:
                await runtime.close()

        print(f"bench_rpc --runtime ray: seeding a {args.fork_beads:,}-bead town (local)", file=sys.stderr, flush=True)
        local_town, local_hop = asyncio.run(seed_local())
        local = start_server(local_data, secret=secret, demo=False, log_level="warning")
        servers.append(local)
        rate, p99, errors = _get_town(local.url, token, local_town, args)
        rows.append(["local backend, uvicorn", f"{rate:,.0f}", f"{p99:.2f}", str(errors)])
        local_fork, _ = _fork_seconds(local.url, token, local_town)
        local.stop()
        servers.remove(local)

        # -- Ray backend --------------------------------------------------------------------------
        print("bench_rpc --runtime ray: starting a two-node Ray cluster", file=sys.stderr, flush=True)
        cluster = _cluster()
        ray_data = work / "ray"
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        ray_env = {"GASTOWN_RUNTIME": "ray", "RAY_ADDRESS": cluster.address, "GASTOWN_RAY_NAMESPACE": namespace}

        async def seed_ray() -> tuple[str, float, str]:
            runtime = RayRuntime(ray_data, ray_namespace=namespace, idle_seconds=600)
            try:
                town = await _seed(runtime, secret, args.fork_beads)
                node, _ = await runtime.namespace(TownDO).where(town)
                return town, await _hop(runtime, town, args.hop_calls), node
            finally:
                await runtime.close()

        print(f"bench_rpc --runtime ray: seeding a {args.fork_beads:,}-bead town (Ray)", file=sys.stderr, flush=True)
        ray_town, ray_hop, source_node = asyncio.run(seed_ray())
        direct = start_server(ray_data, secret=secret, demo=False, log_level="warning", extra_env=ray_env)
        servers.append(direct)
        rate, p99, errors = _get_town(direct.url, token, ray_town, args)
        rows.append(["Ray backend, uvicorn", f"{rate:,.0f}", f"{p99:.2f}", str(errors)])
        forks: dict[str, list[float]] = {"same node": [], "across nodes": []}
        for _ in range(12):
            seconds, new_town = _fork_seconds(direct.url, token, ray_town)
            node = _node_of(namespace, new_town)
            forks["across nodes" if node != source_node else "same node"].append(seconds)
            if all(forks.values()):
                break
        direct.stop()
        servers.remove(direct)
        for replicas in (1, 2):
            serve = start_server(
                ray_data, secret=secret, demo=False, log_level="warning", module="rpc.serve_ray",
                extra_env={**ray_env, "GASTOWN_SERVE_REPLICAS": str(replicas)}, startup_timeout=300,
            )
            servers.append(serve)
            rate, p99, errors = _get_town(serve.url, token, ray_town, args)
            rows.append([f"Ray backend, Serve x{replicas}", f"{rate:,.0f}", f"{p99:.2f}", str(errors)])
            serve.stop()
            servers.remove(serve)

        print(
            f"getTown (tRPC HTTP GET), {args.concurrency} workers, {args.seconds:g} s after {args.warmup:g} s warm-up, "
            f"{os.cpu_count()} CPUs shared by client, servers and both Ray nodes"
        )
        print(format_table(["server", "req/s", "p99 ms", "errors"], rows))
        print(
            f"one object call (TownDO.ownership, median of {args.hop_calls}): local {local_hop * 1e6:,.0f} µs, "
            f"Ray actor hop {ray_hop * 1e6:,.0f} µs (+{(ray_hop - local_hop) * 1e6:,.0f} µs per call)"
        )
        fork_rows = [["local backend", f"{local_fork:.2f}"]]
        fork_rows += [[f"Ray, {k}", f"{statistics.median(v):.2f}" if v else "n/a"] for k, v in forks.items()]
        print(f"forkTown of a {args.fork_beads:,}-bead town (source on node {source_node}), seconds:")
        print(format_table(["where", "s"], fork_rows))
        print("\n".join(lines))
        return 0
    finally:
        for server in servers:
            server.stop()
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def _node_of(namespace: str, town: str) -> str:
    import ray

    node, _ = ray.get(ray.get_actor(f"TownDO/{town}", namespace=namespace).where.remote())
    return str(node)
