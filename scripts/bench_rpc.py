#!/usr/bin/env python3
"""Throughput and latency of gastown.getTown over the three transports, side by side.

(a) tRPC HTTP `GET /trpc/gastown.getTown?input=…`, (b) JSON-RPC 2.0 `POST /rpc`, (c) tRPC
WebSocket (wsLink frames on `/trpc`, token in the `connectionParams` first frame). Each
transport runs alone for --seconds with --concurrency workers: one keep-alive httpx client
(one connection) or one socket per worker, one request in flight per worker. A response counts
only after it is checked to be a success carrying the requested town.

--wrk compares this server with a Node peer instead (scripts/node_peer: the stock
@trpc/server v11 standalone adapter verifying the same HS256 token and answering the same town
from memory): tRPC HTTP getTown under `wrk -t2 -c32 --latency`, the two servers alternating
A B A B for --pairs pairs, req/s and p99 per run, medians and the ratio ours / Node.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import websockets
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python scripts/bench_rpc.py` without an install
    sys.path.insert(0, str(ROOT))

from _support import ServerProcess, clean_exit, format_table, percentile, ratio, start_server
from _wrk import (
    NodePeer,
    WrkResult,
    ensure_node_peer_installed,
    printable_command,
    require_wrk,
    run_wrk,
    start_node_peer,
    wrk_command,
)

from rpc.auth import OrgMembership, mint_token
from rpc.startup import DEV_ORG_ID, DEV_USER_ID

PATH = "gastown.getTown"
TRANSPORTS = {"http": "tRPC HTTP GET", "jsonrpc": "JSON-RPC POST /rpc", "ws": "tRPC WebSocket"}

EPILOG = """\
Either bench a running server (--url, --token or $TOKEN, --town-id or the first town of
gastown.listTowns), or --serve: start `python -m rpc.serve` on a temporary data dir in dev-demo
setup (NEXTAUTH_SECRET set, GASTOWN_DEMO=1, ephemeral port), bench the dev user's demo town,
stop the server and remove the data dir.

Client and server share the machine when run locally: the client's own CPU use is part of the
numbers, the ratios between transports are the point. Exit status 1 if any response was not a
success.

--wrk starts both servers itself (ours as --serve does, the Node peer with the same secret and
the town our server answered) and needs `wrk` (apt-get install -y wrk) and node; it runs
`npm ci` in scripts/node_peer when its node_modules are missing.

examples:
  .venv/bin/python scripts/bench_rpc.py --serve --seconds 5
  .venv/bin/python scripts/bench_rpc.py --wrk --seconds 10 --pairs 3
  TOKEN=... .venv/bin/python scripts/bench_rpc.py --url http://127.0.0.1:8787 --concurrency 16
  .venv/bin/python scripts/bench_rpc.py --runtime ray --seconds 5 --fork-beads 20000
"""

Call = Callable[[], Awaitable[None]]
Session = Callable[[], AbstractAsyncContextManager[Call]]


class BadResponse(Exception):
    """A response that is not the success we asked for."""


@dataclass(frozen=True)
class Target:
    url: str  # http(s)://host:port
    token: str
    town_id: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/trpc?connectionParams=1"


@dataclass
class Result:
    transport: str
    key: str  # short name: http, jsonrpc, ws
    latencies: list[float] = field(default_factory=list)  # seconds, successes only
    errors: int = 0
    first_error: str | None = None
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]


# -- checks -----------------------------------------------------------------------------------
def expect_town(data: Any, town_id: str) -> None:
    if not isinstance(data, dict) or data.get("id") != town_id:
        raise BadResponse(f"expected town {town_id}, got {str(data)[:120]}")


def check_trpc_http(response: httpx.Response, town_id: str) -> None:
    if response.status_code != 200:
        raise BadResponse(f"HTTP {response.status_code}: {response.text[:200]}")
    body = msgspec.json.decode(response.content)
    expect_town((body.get("result") or {}).get("data"), town_id)


def check_jsonrpc(response: httpx.Response, request_id: int, town_id: str) -> None:
    if response.status_code != 200:
        raise BadResponse(f"HTTP {response.status_code}: {response.text[:200]}")
    body = msgspec.json.decode(response.content)
    if body.get("jsonrpc") != "2.0" or body.get("id") != request_id or "result" not in body:
        raise BadResponse(f"not a JSON-RPC success for id {request_id}: {response.text[:200]}")
    expect_town(body["result"], town_id)


def check_ws_reply(frame: str | bytes, request_id: int, town_id: str) -> None:
    body = msgspec.json.decode(frame)
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or body.get("id") != request_id or result.get("type") != "data":
        raise BadResponse(f"not a tRPC data reply for id {request_id}: {str(frame)[:200]}")
    expect_town(result.get("data"), town_id)


# -- transports: each yields a `call()` doing one checked request -------------------------------
def http_client(target: Target) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=target.url,
        headers={"Authorization": f"Bearer {target.token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


def trpc_http_session(target: Target) -> Session:
    url = f"/trpc/{PATH}?input=" + quote(json.dumps({"townId": target.town_id}, separators=(",", ":")))

    @asynccontextmanager
    async def session() -> AsyncIterator[Call]:
        async with http_client(target) as client:

            async def call() -> None:
                check_trpc_http(await client.get(url), target.town_id)

            yield call

    return session


def jsonrpc_session(target: Target) -> Session:
    @asynccontextmanager
    async def session() -> AsyncIterator[Call]:
        async with http_client(target) as client:
            counter = 0

            async def call() -> None:
                nonlocal counter
                counter += 1
                body = {"jsonrpc": "2.0", "id": counter, "method": PATH, "params": {"townId": target.town_id}}
                response = await client.post(
                    "/rpc", content=msgspec.json.encode(body), headers={"content-type": "application/json"}
                )
                check_jsonrpc(response, counter, target.town_id)

            yield call

    return session


def ws_session(target: Target) -> Session:
    @asynccontextmanager
    async def session() -> AsyncIterator[Call]:
        async with connect(target.ws_url, open_timeout=10, close_timeout=2) as socket:
            await socket.send(
                msgspec.json.encode({"method": "connectionParams", "data": {"token": target.token}}).decode()
            )
            counter = 0

            async def call() -> None:
                nonlocal counter
                counter += 1
                frame = {
                    "id": counter,
                    "method": "query",
                    "params": {"path": PATH, "input": {"townId": target.town_id}},
                }
                await socket.send(msgspec.json.encode(frame).decode())
                check_ws_reply(await asyncio.wait_for(socket.recv(), 30), counter, target.town_id)

            yield call

    return session


SESSIONS: dict[str, Callable[[Target], Session]] = {
    "http": trpc_http_session,
    "jsonrpc": jsonrpc_session,
    "ws": ws_session,
}
FAILURES = (
    BadResponse,
    httpx.HTTPError,
    websockets.WebSocketException,
    OSError,
    TimeoutError,
    msgspec.DecodeError,
)


# -- running ------------------------------------------------------------------------------------
async def worker(session: Session, result: Result, measure_from: float, until: float) -> None:
    """Loop calls until `until`; record those started after `measure_from`. After a failure the
    session is reopened (a broken socket fails every later call)."""
    while time.perf_counter() < until:
        try:
            async with session() as call:
                while (started := time.perf_counter()) < until:
                    await call()
                    if started >= measure_from:
                        result.latencies.append(time.perf_counter() - started)
        except FAILURES as exc:
            if time.perf_counter() >= measure_from:
                result.fail(exc)
            await asyncio.sleep(0.01)


async def run_transport(
    name: str, target: Target, *, seconds: float, warmup: float, concurrency: int
) -> Result:
    result = Result(TRANSPORTS[name], name)
    session = SESSIONS[name](target)
    measure_from = time.perf_counter() + warmup
    until = measure_from + seconds
    await asyncio.gather(*(worker(session, result, measure_from, until) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - measure_from
    return result


def resolve_town_id(url: str, token: str) -> str:
    response = httpx.get(
        f"{url}/trpc/gastown.listTowns", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    if response.status_code != 200:
        raise SystemExit(
            f"bench_rpc: gastown.listTowns answered HTTP {response.status_code}: {response.text[:300]}"
        )
    towns = response.json()["result"]["data"]
    if not towns:
        raise SystemExit(
            "bench_rpc: the caller has no towns; pass --town-id (or seed one: scripts/seed_town.py)"
        )
    return str(towns[0]["id"])


def verify_once(target: Target) -> None:
    """One plain request first, so a wrong token or town fails loudly instead of as N errors."""
    response = httpx.get(
        f"{target.url}/trpc/{PATH}",
        params={"input": json.dumps({"townId": target.town_id})},
        headers={"Authorization": f"Bearer {target.token}"},
        timeout=30,
    )
    try:
        check_trpc_http(response, target.town_id)
    except BadResponse as exc:
        raise SystemExit(f"bench_rpc: {PATH} failed before the bench: {exc}") from None


# -- report ---------------------------------------------------------------------------------------
def report(results: list[Result]) -> str:
    rows = [
        [
            f"{r.transport} [{r.key}]",
            f"{len(r.latencies):,}",
            f"{r.rate:,.0f}",
            f"{percentile(r.latencies, 50) * 1000:.2f}",
            f"{percentile(r.latencies, 99) * 1000:.2f}",
            str(r.errors),
        ]
        for r in results
    ]
    lines = [format_table(["transport", "requests", "req/s", "p50 ms", "p99 ms", "errors"], rows)]
    pairs = [(a, b) for i, a in enumerate(results) for b in results[i + 1 :]]
    if pairs:
        lines.append(
            "ratios (req/s): " + ", ".join(f"{b.key}/{a.key} {ratio(b.rate, a.rate)}" for a, b in pairs)
        )
        lines.append(
            "ratios (p50):   "
            + ", ".join(
                f"{b.key}/{a.key} {ratio(percentile(b.latencies, 50), percentile(a.latencies, 50))}"
                for a, b in pairs
            )
        )
    for r in results:
        if r.first_error:
            lines.append(f"first error ({r.transport}): {r.first_error}")
    return "\n".join(lines)


async def bench(target: Target, args: argparse.Namespace) -> list[Result]:
    results = []
    for name in args.transports:
        results.append(
            await run_transport(
                name, target, seconds=args.seconds, warmup=args.warmup, concurrency=args.concurrency
            )
        )
    return results


def run_against(target: Target, args: argparse.Namespace, where: str) -> int:
    verify_once(target)
    print(
        f"bench_rpc: {PATH} on {where}, town {target.town_id}; {args.concurrency} workers per transport, "
        f"{args.seconds:g} s each after {args.warmup:g} s warm-up; {os.cpu_count()} CPUs shared by client and server",
        flush=True,
    )
    results = asyncio.run(bench(target, args))
    print(report(results))
    return 0 if all(r.errors == 0 and r.latencies for r in results) else 1


def serve_and_run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-rpc-"))
    secret = secrets.token_urlsafe(32)
    server: ServerProcess | None = None
    try:
        server = start_server(workdir / "data", secret=secret, demo=True, log_level=args.server_log_level)
        token = mint_token(
            secret, DEV_USER_ID, org_memberships=[OrgMembership(orgId=DEV_ORG_ID, role="owner")]
        )
        town_id = args.town_id or resolve_town_id(server.url, token)
        where = f"{server.url} (--serve, server log level {args.server_log_level})"
        return run_against(Target(server.url, token, town_id), args, where)
    finally:
        if server is not None:
            status = server.stop()
            if not clean_exit(status):
                print(f"bench_rpc: server exited with status {status}:\n{server.log_tail()}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


# -- --wrk: this server and the Node peer, alternating ------------------------------------------------
def get_town_url(base_url: str, town_id: str) -> str:
    return f"{base_url}/trpc/{PATH}?input=" + quote(json.dumps({"townId": town_id}, separators=(",", ":")))


def town_answer(target: Target) -> Any:
    response = httpx.get(
        get_town_url(target.url, target.town_id),
        headers={"Authorization": f"Bearer {target.token}"},
        timeout=30,
    )
    check_trpc_http(response, target.town_id)
    return msgspec.json.decode(response.content)["result"]["data"]


def wrk_report(runs: list[tuple[int, str, WrkResult]]) -> str:
    rows = [
        [
            f"{pair}",
            name,
            f"{r.requests_per_s:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.requests:,}",
            str(r.non_2xx + r.socket_errors),
        ]
        for pair, name, r in runs
    ]
    lines = [format_table(["pair", "server", "req/s", "p50 ms", "p99 ms", "requests", "errors"], rows), ""]
    medians: dict[str, tuple[float, float]] = {}
    for name in ("ours", "node"):
        mine = [r for _, n, r in runs if n == name]
        medians[name] = (
            statistics.median(r.requests_per_s for r in mine),
            statistics.median(r.p99_ms for r in mine),
        )
        lines.append(f"median {name}: {medians[name][0]:,.0f} req/s, p99 {medians[name][1]:.2f} ms")
    per_pair = [
        ratio(ours.requests_per_s, node.requests_per_s)
        for (pa, na, ours), (pb, nb, node) in zip(runs[::2], runs[1::2])
        if na == "ours" and nb == "node" and pa == pb
    ]
    lines.append(
        f"ours / node: req/s {ratio(medians['ours'][0], medians['node'][0])} (medians; per pair "
        f"{', '.join(per_pair)}), p99 {ratio(medians['ours'][1], medians['node'][1])} (lower is better)"
    )
    return "\n".join(lines)


def wrk_compare(args: argparse.Namespace) -> int:
    require_wrk()
    ensure_node_peer_installed()
    workdir = Path(tempfile.mkdtemp(prefix="bench-rpc-wrk-"))
    secret = secrets.token_urlsafe(32)
    server: ServerProcess | None = None
    peer: NodePeer | None = None
    try:
        server = start_server(workdir / "data", secret=secret, demo=True, log_level=args.server_log_level)
        token = mint_token(
            secret, DEV_USER_ID, org_memberships=[OrgMembership(orgId=DEV_ORG_ID, role="owner")]
        )
        town_id = args.town_id or resolve_town_id(server.url, token)
        ours = Target(server.url, token, town_id)
        answer = town_answer(ours)
        towns_file = workdir / "towns.json"
        towns_file.write_bytes(msgspec.json.encode([answer]))
        peer = start_node_peer(secret, towns_file, workdir)
        node = Target(peer.url, token, town_id)
        if town_answer(node) != answer:
            raise SystemExit("bench_rpc: the Node peer's getTown answer differs from ours")
        targets = {"ours": ours, "node": node}
        commands = {
            name: wrk_command(
                get_town_url(t.url, town_id),
                token=token,
                seconds=args.seconds,
                threads=args.wrk_threads,
                connections=args.wrk_connections,
            )
            for name, t in targets.items()
        }
        print(
            f"bench_rpc --wrk: {PATH} over tRPC HTTP, town {town_id}; {args.pairs} pairs of {args.seconds:g} s runs "
            f"(ours, then node), each server warmed up for {args.warmup:g} s first; {os.cpu_count()} CPUs shared by wrk and both servers",
            flush=True,
        )
        print(
            f"server (ours): NEXTAUTH_SECRET=$NEXTAUTH_SECRET GASTOWN_DEMO=1 GASTOWN_DATA_DIR={workdir / 'data'} "
            f"GASTOWN_LOG_LEVEL={args.server_log_level} HOST=127.0.0.1 PORT={server.port} {sys.executable} -m rpc.serve"
        )
        print(f"server (node): {peer.command}")
        for name, command in commands.items():
            print(f"wrk ({name}): {printable_command(command, token)}")
        print(
            "(TOKEN: an HS256 token for the dev user, minted with the run's random NEXTAUTH_SECRET)\n",
            flush=True,
        )
        for name, t in targets.items():
            warmup = wrk_command(
                get_town_url(t.url, town_id),
                token=token,
                seconds=args.warmup,
                threads=args.wrk_threads,
                connections=args.wrk_connections,
            )
            run_wrk(warmup, args.warmup)
        runs: list[tuple[int, str, WrkResult]] = []
        for pair in range(1, args.pairs + 1):
            for name, command in commands.items():
                result = run_wrk(command, args.seconds)
                runs.append((pair, name, result))
                print(
                    f"  pair {pair} {name}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_ms:.2f} ms",
                    flush=True,
                )
        print()
        print(wrk_report(runs))
        return 0 if all(r.ok for _, _, r in runs) else 1
    finally:
        if peer is not None:
            peer.stop()
        if server is not None:
            status = server.stop()
            if not clean_exit(status):
                print(f"bench_rpc: server exited with status {status}:\n{server.log_tail()}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bench gastown.getTown over tRPC HTTP, JSON-RPC and tRPC WebSocket.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--serve", action="store_true", help="start a server of our own on a temporary data dir"
    )
    parser.add_argument(
        "--wrk",
        action="store_true",
        help="start our server and the Node peer; wrk against each, alternating (see below)",
    )
    parser.add_argument(
        "--pairs", type=int, default=3, help="--wrk: runs per server, alternating (default 3)"
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="--wrk: wrk -t (default 2)")
    parser.add_argument("--wrk-connections", type=int, default=32, help="--wrk: wrk -c (default 32)")
    parser.add_argument(
        "--url", default="http://127.0.0.1:8787", help="server to bench (default http://127.0.0.1:8787)"
    )
    parser.add_argument("--token", default=None, help="bearer token (default $TOKEN)")
    parser.add_argument(
        "--town-id", default=None, help="town to read (default: the first of gastown.listTowns)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="measured seconds per transport (default 5; --wrk: per run, default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="unmeasured warm-up seconds per transport (default 0.5; --wrk: per server, default 2)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="workers per transport (default 8)")
    parser.add_argument(
        "--transports",
        default="http,jsonrpc,ws",
        help="comma list of http, jsonrpc, ws, run in that order (default all three)",
    )
    parser.add_argument(
        "--runtime",
        choices=("local", "ray"),
        default="local",
        help="ray: the Ray backend next to the local one on a two-node cluster started here "
        "(getTown through uvicorn and Ray Serve x1/x2, the actor hop, a big fork; scripts/_bench_ray.py)",
    )
    parser.add_argument("--fork-beads", type=int, default=20000, help="--runtime ray: beads of the forked town (default 20000)")
    parser.add_argument("--hop-calls", type=int, default=500, help="--runtime ray: calls timed for the actor hop (default 500)")
    parser.add_argument(
        "--server-log-level",
        default="info",
        help="GASTOWN_LOG_LEVEL of the --serve server (default info: one log line per request)",
    )
    args = parser.parse_args(argv)
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = [t for t in args.transports if t not in TRANSPORTS]
    if unknown or not args.transports:
        parser.error(f"--transports: unknown {unknown}; choose from {', '.join(TRANSPORTS)}")
    if args.seconds is None:
        args.seconds = 10.0 if args.wrk else 5.0
    if args.warmup is None:
        args.warmup = 2.0 if args.wrk else 0.5
    if args.seconds <= 0 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--seconds must be > 0, --warmup >= 0, --concurrency >= 1")
    if args.wrk and (args.seconds < 1 or args.warmup < 1 or args.pairs < 1):
        parser.error("--wrk: --seconds and --warmup must be >= 1 (wrk counts whole seconds), --pairs >= 1")
    if args.wrk and args.serve:
        parser.error("--wrk starts its own servers: drop --serve")
    args.url = args.url.rstrip("/")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.runtime == "ray":
        import _bench_ray

        return _bench_ray.run(args)
    if args.wrk:
        return wrk_compare(args)
    if args.serve:
        return serve_and_run(args)
    token = args.token or os.environ.get("TOKEN")
    if not token:
        print("bench_rpc: pass --token or set $TOKEN (or use --serve)", file=sys.stderr)
        return 2
    try:
        town_id = args.town_id or resolve_town_id(args.url, token)
    except httpx.HTTPError as exc:
        print(f"bench_rpc: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    return run_against(Target(args.url, token, town_id), args, args.url)


if __name__ == "__main__":
    sys.exit(main())
