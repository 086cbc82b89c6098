"""gastown.watchTownEvents over a raw tRPC WebSocket: history pages forward, new events follow."""

from __future__ import annotations

import asyncio
import json
import uuid

import websockets

from tests.server import RunningServer
from tests.trpc import mutate


def _batch_create(client, rig: str, count: int) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, count, 100):
        body = [
            {"jsonrpc": "2.0", "id": i, "method": "gastown.createBead", "params": {"rigId": rig, "title": f"b{i}"}}
            for i in range(start, min(start + 100, count))
        ]
        assert all("result" in r for r in client.post("/rpc", json=body).json())


def test_a_burst_larger_than_a_page_arrives_whole_and_in_order(server: RunningServer) -> None:
    token = server.token(f"watcher-{uuid.uuid4().hex[:6]}")
    client = server.client(token)
    town = mutate(client, "createTown", {"name": "watched"})["id"]
    rig = mutate(client, "createRig", {"townId": town, "name": "r", "gitUrl": "https://github.com/a/r.git"})["id"]
    _batch_create(client, rig, 1200)  # 1,200 `created` events: more than two pages of 500

    async def watch() -> list[dict]:
        received: list[dict] = []
        async with websockets.connect(f"{server.ws_url}?connectionParams=1") as ws:
            await ws.send(json.dumps({"method": "connectionParams", "data": {"token": token}}))
            params = {"path": "gastown.watchTownEvents", "input": {"townId": town, "since": "2000-01-01T00:00:00.000Z", "pollMs": 100}}
            await ws.send(json.dumps({"id": 1, "method": "subscription", "params": params}))
            started = json.loads(await ws.recv())
            assert started == {"id": 1, "result": {"type": "started"}}
            while len(received) < 1201:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                received.append(frame["result"]["data"]["data"])
                if len(received) == 1200:
                    mutate(client, "createBead", {"rigId": rig, "title": "late"})
            await ws.send(json.dumps({"id": 1, "method": "subscription.stop"}))
        return received

    events = asyncio.run(watch())
    ids = [e["bead_event_id"] for e in events]
    assert len(set(ids)) == 1201
    stamps = [e["created_at"] for e in events]
    assert stamps == sorted(stamps)
    assert events[-1]["metadata"].get("title") == "late"
