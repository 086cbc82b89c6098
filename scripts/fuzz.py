#!/usr/bin/env python3
"""Hostile-input fuzzer: Hypothesis-generated malformed requests on every transport.

    .venv/bin/python scripts/fuzz.py --serve --requests 3000 --seed 1
    .venv/bin/python scripts/fuzz.py --url http://127.0.0.1:8787 --token "$TOKEN" --requests 500

Every procedure's input Struct (read with msgspec.inspect from the procedure table) and every
envelope field is fed wrong types, out-of-range integers, long strings, lone surrogates, deep
nesting, unknown, missing and null fields, over tRPC HTTP (GET, POST, batch, JSON lines), SSE,
JSON-RPC (single, batch, notification), the tRPC-style envelope on /rpc and WebSocket frames
(out of order, fragmented, binary, invalid UTF-8, unknown ids, `subscription.stop` of unknown
ids). Each reply must be a valid envelope with a consistent code and status, never
INTERNAL_SERVER_ERROR or a 5xx, never traceback text. After the run: no traceback in the server
log (--serve), getTown still answers quickly, a write to a town succeeds (no object stays
locked), RSS roughly flat. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
import msgspec.inspect as mi
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from rpc.auth import mint_token
from rpc.errors import TRPC_CODES
from rpc.procedures import all_procedures
from scripts._support import read_proc_status_kib, start_server

PROCEDURES = list(all_procedures())
SUBSCRIPTIONS = {p.path for p in PROCEDURES if p.kind == "subscription"}
JSONRPC_PROTOCOL_CODES = {-32700, -32600, -32601, -32602}
# 1000 normal, 1002 protocol error, 1003 unsupported data (binary), 1007 invalid UTF-8,
# 1008 policy, 1009 too big; 1011 (server error) and an abnormal 1006 are failures.
WS_CLOSE_OK = {1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009}
BIG_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40, -(10**40)]
LONE_SURROGATES = ["\ud800", "\udfff", "a\udbffb"]


# -- strategies -------------------------------------------------------------------------------
@dataclass
class World:
    """Ids that exist on the server, so hostile inputs also reach real objects and SQLite."""

    town_id: str = str(uuid.uuid4())
    rig_id: str = str(uuid.uuid4())
    # Never in a generated request (the fuzz may delete its own town): checked afterwards.
    witness_town_id: str = str(uuid.uuid4())
    witness_rig_id: str = str(uuid.uuid4())
    tokens: list[str | None] = field(default_factory=list)


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from(BIG_INTS),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(LONE_SURROGATES + ["", " ", "\x00", "\n", "<script>", "../..", "%0A", "😀" * 3]),
    )


def hostile_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def long_string(max_length: int | None) -> st.SearchStrategy[str]:
    lengths = [0, 1, 300, 70_000] if max_length is None else [max_length, max_length + 1, max_length * 4 + 10]
    return st.builds(lambda n, ch: ch * n, st.sampled_from(lengths), st.sampled_from(["x", "é", "\ud800"]))


def deep(depth: int) -> Any:
    value: Any = 0
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def for_type(tp: Any, world: World, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for one field: mostly plausible for its type, often just wrong."""
    wrong = hostile_values()
    if depth > 3:
        return wrong
    if isinstance(tp, mi.IntType):
        edges = [v for v in (tp.ge, tp.le, tp.gt, tp.lt) if v is not None]
        near = [e + d for e in edges for d in (-1, 0, 1)]
        good = st.sampled_from(near + BIG_INTS + [0, -1]) | st.integers()
    elif isinstance(tp, mi.StrType):
        good = st.text(max_size=40) | long_string(tp.max_length) | st.sampled_from(LONE_SURROGATES)
    elif isinstance(tp, mi.UUIDType):
        good = st.sampled_from(
            [world.town_id, world.rig_id, str(uuid.UUID(int=0)), "not-a-uuid"]
        ) | st.uuids().map(str)
    elif isinstance(tp, mi.LiteralType):
        good = st.sampled_from(list(tp.values))
    elif isinstance(tp, mi.BoolType):
        good = st.booleans()
    elif isinstance(tp, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        size = tp.max_length if tp.max_length is not None else 5
        good = st.lists(for_type(tp.item_type, world, depth + 1), max_size=3) | st.builds(
            lambda n: [0] * n, st.sampled_from([size + 1, 600])
        )
    elif isinstance(tp, mi.DictType):
        good = st.dictionaries(st.text(max_size=10), for_type(tp.value_type, world, depth + 1), max_size=3)
    elif isinstance(tp, mi.StructType):
        good = struct_inputs(tp, world, depth + 1)
    elif isinstance(tp, mi.UnionType):
        good = st.one_of([for_type(t, world, depth + 1) for t in tp.types])
    else:
        good = wrong
    return st.one_of(good, good, good, wrong)


def struct_inputs(info: mi.StructType, world: World, depth: int = 0) -> st.SearchStrategy[Any]:
    """An object built from the Struct's fields, each kept, dropped, nulled or replaced."""
    fields = {f.encode_name: f for f in info.fields}

    def one(name: str) -> st.SearchStrategy[Any]:
        return st.one_of(for_type(fields[name].type, world, depth), st.just(None), st.just(_DROP))

    base = st.fixed_dictionaries({name: one(name) for name in fields}).map(
        lambda d: {k: v for k, v in d.items() if v is not _DROP}
    )
    extra = st.dictionaries(st.text(max_size=12), hostile_values(), max_size=2)
    return st.one_of(
        st.builds(lambda d, e: {**e, **d}, base, extra),
        base,
        base.map(lambda d: {"json": d}),  # the superjson-style wrapper one front end sends
        hostile_values(),
        st.sampled_from([deep(70), deep(200)]),
    )


_DROP = object()


def inputs_for(world: World) -> st.SearchStrategy[tuple[str, Any]]:
    def for_proc(proc: Any) -> st.SearchStrategy[tuple[str, Any]]:
        value = struct_inputs(mi.type_info(proc.input), world) if proc.input else hostile_values()
        return st.tuples(st.just(proc.path), st.one_of(value, st.just(_DROP)))

    return st.one_of([for_proc(p) for p in PROCEDURES])


def hostile_paths() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([p.path for p in PROCEDURES]),
        st.sampled_from(
            ["", "gastown.get\nTown", "gastown", "..", "gastown.getTown/x", "a,b", "ü", "\ud800"]
        ),
        st.text(max_size=30),
    )


def to_json(value: Any) -> str:
    """Python's encoder: writes lone surrogates as escapes and NaN as invalid JSON, like a hostile client."""
    return json.dumps(value, ensure_ascii=True)


# -- checks -----------------------------------------------------------------------------------
class Fuzzer:
    def __init__(self, url: str, world: World) -> None:
        self.url = url.rstrip("/")
        self.ws_url = self.url.replace("http", "ws", 1) + "/trpc"
        self.world = world
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []

    def fail(self, transport: str, what: str, detail: str) -> None:
        self.failures.append(f"[{transport}] {what}: {detail[:400]}")

    def check_error(
        self, transport: str, what: str, error: Any, status: int | None, jsonrpc: bool = False
    ) -> None:
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return self.fail(transport, what, f"bad error object {error!r}")
        data, code = error.get("data"), error.get("code")
        if not isinstance(data, dict) or data.get("code") not in TRPC_CODES:
            return self.fail(transport, what, f"bad error data {error!r}")
        key = data["code"]
        if TRPC_CODES[key][1] >= 500 or data.get("httpStatus") != TRPC_CODES[key][1]:
            return self.fail(transport, what, f"server error or bad httpStatus {error!r}")
        if code != TRPC_CODES[key][0] and not (jsonrpc and code in JSONRPC_PROTOCOL_CODES):
            return self.fail(transport, what, f"code {code} does not match {key}")
        if status is not None and status != data["httpStatus"]:
            return self.fail(transport, what, f"HTTP {status} but httpStatus {data['httpStatus']}")
        if "stack" in data or "Traceback" in error["message"]:
            return self.fail(transport, what, "traceback in reply")

    def check_trpc(self, transport: str, what: str, item: Any, status: int | None) -> None:
        if not isinstance(item, dict) or ("result" in item) == ("error" in item):
            return self.fail(transport, what, f"not a tRPC envelope {item!r}")
        if "error" in item:
            self.check_error(transport, what, item["error"], status)
        elif not isinstance(item["result"], dict) or "data" not in item["result"]:
            self.fail(transport, what, f"bad result {item!r}")

    def check_http(self, transport: str, what: str, response: httpx.Response) -> Any:
        if response.status_code >= 500:
            return self.fail(transport, what, f"HTTP {response.status_code} {response.text}")
        if "Traceback" in response.text:
            return self.fail(transport, what, "traceback in reply")
        if response.status_code == 204 and not response.content:
            return None
        if not response.headers.get("content-type", "").startswith("application/json"):
            return self.fail(
                transport, what, f"content-type {response.headers.get('content-type')}: {response.text}"
            )
        try:
            return response.json()
        except ValueError:
            return self.fail(transport, what, f"not JSON: {response.text}")

    # -- transports ---------------------------------------------------------------------------
    def trpc_http(self, token: str | None, calls: list[tuple[str, Any]], how: dict[str, Any]) -> None:
        batch = len(calls) > 1 or how["batch"]
        if how["get"] and not (batch and how["batch_value"] == "1") and calls[0][0] in SUBSCRIPTIONS:
            return self.sse(token, calls[0][0], calls[0][1], False)  # a GET on a subscription is SSE
        transport = "trpc-batch" if batch else ("trpc-get" if how["get"] else "trpc-post")
        self.counts[transport] += 1
        # Dot segments escaped: httpx would resolve `/trpc/..` to `/` before sending it.
        paths = ",".join(
            "%2E" * len(p) if p in (".", "..") else quote(p, safe="" if how["quote"] else "._")
            for p, _ in calls
        )
        if batch:
            raw: Any = {str(i): v for i, (_, v) in enumerate(calls) if v is not _DROP}
        else:
            raw = calls[0][1]
        body = None if raw is _DROP else to_json(raw)
        params: dict[str, str] = {}
        if batch:
            params["batch"] = how["batch_value"]
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if how["jsonl"]:
            headers["trpc-accept"] = "application/jsonl"
        what = f"{'GET' if how['get'] else 'POST'} /trpc/{paths[:120]} input={(body or '')[:120]}"
        try:
            if how["get"]:
                if body is not None:
                    params["input"] = body
                response = self.http.get(f"/trpc/{paths}", params=params, headers=headers)
            else:
                if how["content_type"] is not None:
                    headers["content-type"] = how["content_type"]
                response = self.http.post(
                    f"/trpc/{paths}", params=params, headers=headers, content=body or b""
                )
        except httpx.HTTPError as exc:
            return self.fail(transport, what, f"transport error {exc!r}")
        if how["jsonl"] and batch and response.status_code == 200:  # httpBatchStreamLink's JSON lines
            return self.check_jsonl(transport, what, response)
        reply = self.check_http(transport, what, response)
        if reply is None:
            return
        if isinstance(reply, list):
            for item in reply:
                self.check_trpc(transport, what, item, None)
        else:
            self.check_trpc(transport, what, reply, response.status_code)

    def check_jsonl(self, transport: str, what: str, response: httpx.Response) -> None:
        if response.status_code >= 500 or "Traceback" in response.text:
            return self.fail(transport, what, f"HTTP {response.status_code} {response.text}")
        for line in response.text.splitlines():
            try:
                chunk = json.loads(line)
            except ValueError:
                return self.fail(transport, what, f"bad JSON line {line!r}")
            if '"INTERNAL_SERVER_ERROR"' in line:
                return self.fail(transport, what, f"internal error in stream: {chunk!r}")

    def jsonrpc(self, token: str | None, items: list[Any], batch: bool) -> None:
        transport = "jsonrpc-batch" if batch else "jsonrpc"
        self.counts[transport] += 1
        body = to_json(items if batch else items[0])
        what = f"POST /rpc {body[:200]}"
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            response = self.http.post("/rpc", content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self.fail(transport, what, f"transport error {exc!r}")
        reply = self.check_http(transport, what, response)
        if reply is None:
            return
        for item in reply if isinstance(reply, list) else [reply]:
            if not isinstance(item, dict) or "id" not in item or ("result" in item) == ("error" in item):
                self.fail(transport, what, f"not a JSON-RPC or tRPC reply {item!r}")
            elif "jsonrpc" in item and item["jsonrpc"] != "2.0":
                self.fail(transport, what, f"echoed jsonrpc {item['jsonrpc']!r}")
            elif "error" in item:
                self.check_error(transport, what, item["error"], None, jsonrpc=True)

    def websocket(self, token: str | None, frames: list[Any], params_first: bool) -> None:
        self.counts["websocket"] += 1
        what = f"WS frames={[repr(f)[:80] for f in frames][:6]}"
        url = self.ws_url + ("?connectionParams=1" if params_first else "")
        try:
            with ws_connect(url, open_timeout=10, close_timeout=2, max_size=2**24) as ws:
                if params_first:
                    ws.send(to_json({"method": "connectionParams", "data": {"token": token}}))
                for frame in frames:
                    kind, payload = frame
                    if kind == "text":
                        ws.send(payload)
                    elif kind == "binary":
                        ws.send(payload, text=False)
                    elif kind == "bad-utf8":
                        # The server closes with 1007 at once; frames written after that would
                        # meet a reset and lose the close frame (a 1006 that is the client's doing).
                        ws.send(payload, text=True)
                        break
                    elif kind == "fragments":
                        ws.send(iter(payload))
                deadline = time.monotonic() + 0.15
                while time.monotonic() < deadline:
                    try:
                        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
                    except TimeoutError:
                        break
                    self.check_ws_frame(what, message)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
            if code not in WS_CLOSE_OK:
                self.fail("websocket", what, f"closed with {code}")
        except (OSError, TimeoutError) as exc:
            self.fail("websocket", what, f"transport error {exc!r}")

    def check_ws_frame(self, what: str, message: str | bytes) -> None:
        if isinstance(message, bytes) or "Traceback" in message:
            return self.fail("websocket", what, f"unexpected frame {message!r}")
        try:
            reply = json.loads(message)
        except ValueError:
            return self.fail("websocket", what, f"not JSON {message!r}")
        if isinstance(reply, dict) and reply.get("method") in ("reconnect", "ping", "pong"):
            return
        if not isinstance(reply, dict) or "id" not in reply or ("result" in reply) == ("error" in reply):
            return self.fail("websocket", what, f"bad frame {reply!r}")
        if "error" in reply:
            self.check_error("websocket", what, reply["error"], None)

    def sse(self, token: str | None, path: str, value: Any, query_token: bool) -> None:
        self.counts["sse"] += 1
        params: dict[str, str] = {}
        if value is not _DROP:
            params["input"] = to_json(value)
        headers = {"accept": "text/event-stream"}
        if token and query_token:
            params["connectionParams"] = to_json({"token": token})
        elif token:
            headers["authorization"] = f"Bearer {token}"
        what = f"SSE {path} input={params.get('input', '')[:160]}"
        try:
            with self.http.stream(
                "GET", f"/trpc/{quote(path, safe='')}", params=params, headers=headers, timeout=10
            ) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    response.read()
                    reply = self.check_http("sse", what, response)
                    if reply is not None:
                        self.check_trpc("sse", what, reply, response.status_code)
                    return
                started = time.monotonic()
                for line in response.iter_lines():
                    if "INTERNAL_SERVER_ERROR" in line or "Traceback" in line:
                        return self.fail("sse", what, f"event {line!r}")
                    if time.monotonic() - started > 0.15 or line.startswith("event: serialized-error"):
                        break
        except httpx.ReadTimeout:
            pass
        except httpx.HTTPError as exc:
            self.fail("sse", what, f"transport error {exc!r}")


# -- the run ----------------------------------------------------------------------------------
def requests_strategy(world: World) -> st.SearchStrategy[tuple[str, Any]]:
    tokens = st.sampled_from(world.tokens)
    call = inputs_for(world)
    paths = hostile_paths()
    how = st.fixed_dictionaries(
        {
            "get": st.booleans(),
            "batch": st.booleans(),
            "batch_value": st.sampled_from(["1", "1", "0", "", "true", "2"]),
            "jsonl": st.booleans(),
            "quote": st.booleans(),
            "content_type": st.sampled_from(
                [
                    "application/json",
                    "application/json",
                    "application/json; charset=utf-8",
                    "text/plain",
                    None,
                    "application/x-www-form-urlencoded",
                ]
            ),
        }
    )
    trpc_calls = st.one_of(
        st.lists(call, min_size=1, max_size=4),
        st.lists(st.tuples(paths, hostile_values()), min_size=1, max_size=3),
    )
    ids = st.one_of(st.integers(-3, 10**20), st.text(max_size=8), st.none(), hostile_values())

    def jsonrpc_item(pv: tuple[str, Any], id_: Any, variant: dict[str, Any]) -> Any:
        path, value = pv
        item: dict[str, Any] = {"jsonrpc": "2.0", "method": path}
        if value is not _DROP:
            item["params"] = value if variant["params_as_object"] else [value]
        if not variant["notification"]:
            item["id"] = id_
        for key, bad in variant["overrides"].items():
            item[key] = bad
        return item

    def trpc_frame(pv: tuple[str, Any], id_: Any, variant: dict[str, Any]) -> Any:
        path, value = pv
        frame: dict[str, Any] = {"id": id_, "method": variant["kind"], "params": {"path": path}}
        if value is not _DROP:
            frame["params"]["input"] = value
        for key, bad in variant["overrides"].items():
            frame[key] = bad
        return frame

    overrides = st.dictionaries(
        st.sampled_from(["jsonrpc", "method", "params", "id"]), hostile_values(), max_size=2
    )
    variants = st.fixed_dictionaries(
        {
            "params_as_object": st.booleans(),
            "notification": st.booleans(),
            "kind": st.sampled_from(["query", "mutation", "subscription", "subscription.stop", "nope"]),
            "overrides": st.one_of(st.just({}), st.just({}), overrides),
        }
    )
    rpc_item = st.one_of(
        st.builds(jsonrpc_item, call, ids, variants),
        st.builds(trpc_frame, call, ids, variants),
        hostile_values(),
    )
    ws_text = st.one_of(
        st.builds(lambda f: ("text", to_json(f)), st.builds(trpc_frame, call, ids, variants)),
        st.builds(
            lambda fs: ("text", to_json(fs)), st.lists(st.builds(trpc_frame, call, ids, variants), max_size=3)
        ),
        st.builds(lambda v: ("text", to_json(v)), hostile_values()),
        st.sampled_from(
            [
                ("text", "not json"),
                ("text", ""),
                ("text", to_json(deep(300))),
                ("text", '{"id":1,"method":"subscription.stop"}'),
                ("text", '{"id":"nope","method":"subscription.stop","params":{}}'),
                ("text", '{"method":"connectionParams","data":{"token":"late"}}'),
                ("binary", b"\x00\x01binary"),
                ("bad-utf8", b'{"id":1,"method":"query","params":{"path":"\xff\xfe"}}'),
                ("fragments", ['{"id":7,"method":"query",', '"params":{"path":"gastown.listTowns"}}']),
                ("fragments", [b"\x00", b"\x01"]),
            ]
        ),
    )
    return st.one_of(
        st.tuples(st.just("trpc"), st.tuples(tokens, trpc_calls, how)),
        st.tuples(
            st.just("jsonrpc"), st.tuples(tokens, st.lists(rpc_item, min_size=1, max_size=5), st.booleans())
        ),
        st.tuples(
            st.just("websocket"), st.tuples(tokens, st.lists(ws_text, min_size=1, max_size=5), st.booleans())
        ),
        st.tuples(
            st.just("sse"),
            st.tuples(
                tokens,
                st.sampled_from(
                    ["gastown.watchTownEvents", "gastown.forkProgress", "gastown.getTown", "gastown.nope"]
                ),
                st.one_of(
                    st.just({"townId": world.town_id, "pollMs": 100}),
                    struct_inputs(mi.type_info(_input_of("gastown.watchTownEvents")), world),
                    hostile_values(),
                    st.just(_DROP),
                ),
                st.booleans(),
            ),
        ),
    )


def _input_of(path: str) -> Any:
    return next(p.input for p in PROCEDURES if p.path == path)


def prepare_world(url: str, token: str | None, secret: str | None) -> World:
    world = World()
    tokens: list[str | None] = [None, "garbage", "a.b.c", token]
    if secret is not None:
        expired = mint_token(secret, "fuzz-user", ttl_seconds=-10)
        other = mint_token("another-secret-entirely-0123456789", "fuzz-user")
        tokens += [
            expired,
            other,
            mint_token(secret, "fuzz-stranger"),
            mint_token(secret, "fuzz-user", gastown_access=False),
        ]
    world.tokens = tokens
    if token:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30) as client:
            world.town_id, world.rig_id = _town_with_rig(client, "fuzz town")
            world.witness_town_id, world.witness_rig_id = _town_with_rig(client, "witness town")
    return world


def _town_with_rig(client: httpx.Client, name: str) -> tuple[str, str]:
    town = client.post("/trpc/gastown.createTown", json={"name": name}).json()["result"]["data"]
    rig = client.post(
        "/trpc/gastown.createRig",
        json={"townId": town["id"], "name": "fuzz-rig", "gitUrl": "https://example.com/fuzz.git"},
    ).json()["result"]["data"]
    return town["id"], rig["id"]


def after_checks(fuzzer: Fuzzer, token: str | None) -> None:
    """The server still answers quickly and writes to the fuzzed town still go through."""
    if not token:
        return
    headers = {"authorization": f"Bearer {token}"}
    world = fuzzer.world
    started = time.monotonic()
    got = fuzzer.http.get(
        "/trpc/gastown.getTown", params={"input": to_json({"townId": world.witness_town_id})}, headers=headers
    )
    elapsed = time.monotonic() - started
    if got.status_code != 200 or elapsed > 2:
        fuzzer.fail("after", "getTown", f"HTTP {got.status_code} in {elapsed:.2f}s: {got.text}")
    started = time.monotonic()
    for town_id, rig_id, may_be_gone in (
        (world.witness_town_id, world.witness_rig_id, False),
        (world.town_id, world.rig_id, True),
    ):
        bead = fuzzer.http.post(
            "/trpc/gastown.createBead",
            json={"rigId": rig_id, "townId": town_id, "title": "after the fuzz"},
            headers=headers,
            timeout=10,
        )
        if bead.status_code != 200 and not (may_be_gone and bead.status_code == 404):
            fuzzer.fail(
                "after",
                f"createBead in town {town_id} (no object left locked)",
                f"HTTP {bead.status_code}: {bead.text}",
            )
    print(f"after: getTown {elapsed * 1000:.0f} ms, writes {(time.monotonic() - started) * 1000:.0f} ms")


def run(url: str, token: str | None, secret: str | None, requests: int, seed: int) -> Fuzzer:
    world = prepare_world(url, token, secret)
    fuzzer = Fuzzer(url, world)

    @hypothesis_seed(seed)
    @settings(
        max_examples=requests,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests_strategy(world))
    def one(request: tuple[str, Any]) -> None:
        transport, args = request
        try:
            dispatch(transport, args)
        except (httpx.InvalidURL, UnicodeEncodeError):  # refused by the client library itself
            fuzzer.counts["skipped"] += 1

    def dispatch(transport: str, args: Any) -> None:
        if transport == "trpc":
            token_, calls, how = args
            fuzzer.trpc_http(token_, calls, how)
        elif transport == "jsonrpc":
            token_, items, batch = args
            fuzzer.jsonrpc(token_, items, batch or len(items) > 1)
        elif transport == "websocket":
            token_, frames, params_first = args
            fuzzer.websocket(token_, frames, params_first)
        else:
            fuzzer.sse(*args)

    one()
    after_checks(fuzzer, token)
    return fuzzer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="a running server (default with --serve: one started here)")
    parser.add_argument("--token", help="a valid token for --url (creates one town and rig)")
    parser.add_argument("--serve", action="store_true", help="start a server on a temporary data dir")
    args = parser.parse_args()
    if args.serve == bool(args.url):
        parser.error("give exactly one of --serve or --url")
    server = None
    secret = None
    token = args.token
    url = args.url
    if args.serve:
        secret = secrets.token_hex(32)
        data_dir = Path(tempfile.mkdtemp(prefix="gastown-fuzz-")) / "data"
        server = start_server(data_dir, secret=secret, demo=False)
        url, token = server.url, mint_token(secret, "fuzz-user")
        print(f"server {url} (log {server.log_path})")
    assert url is not None
    try:
        rss_before = read_proc_status_kib(server.process.pid, "VmRSS") if server else None
        started = time.monotonic()
        fuzzer = run(url, token, secret, args.requests, args.seed)
        elapsed = time.monotonic() - started
        if server is not None:
            time.sleep(0.2)  # let the last log lines land
            log = server.log_path.read_text(errors="replace")
            if "Traceback" in log:
                at = log.index("Traceback")
                fuzzer.fail("server-log", "traceback", log[max(at - 300, 0) : at + 1500])
            rss_after = read_proc_status_kib(server.process.pid, "VmRSS")
            if rss_before and rss_after:
                print(f"RSS: {rss_before / 1024:.0f} MiB before, {rss_after / 1024:.0f} MiB after")
                if rss_after > rss_before * 2 + 100 * 1024:
                    fuzzer.fail("server", "RSS", f"grew from {rss_before} to {rss_after} KiB")
    finally:
        if server is not None:
            server.stop()
    if server is not None and not fuzzer.failures:
        shutil.rmtree(server.log_path.parent, ignore_errors=True)  # kept when it has something to show
    total = sum(fuzzer.counts.values())
    print(f"{total} requests in {elapsed:.1f}s (seed {args.seed})")
    for transport, count in sorted(fuzzer.counts.items()):
        failed = sum(1 for f in fuzzer.failures if f.startswith(f"[{transport}]"))
        print(f"  {transport:<14} {count:>6} requests  {failed} failures")
    print(f"failures: {len(fuzzer.failures)}")
    for failure in fuzzer.failures[:30]:
        print("  " + failure.replace("\n", "\\n"))
    return 1 if fuzzer.failures else 0


if __name__ == "__main__":
    sys.exit(main())
