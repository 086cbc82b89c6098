"""The Node peer of `scripts/bench_rpc.py --wrk` (scripts/node_peer) is a fair baseline: for the
same token and town it gives the same getTown answer as our server, and refuses the same
callers with the same error bodies."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import msgspec
import pytest

from tests.server import RunningServer, free_port

PEER_DIR = Path(__file__).resolve().parents[2] / "scripts" / "node_peer"


@pytest.fixture(scope="module")
def town(server: RunningServer) -> dict[str, object]:
    with server.client(server.token("peer-owner")) as client:
        response = client.post("/trpc/gastown.createTown", json={"name": "Peer town"})
    assert response.status_code == 200, response.text
    town_id = response.json()["result"]["data"]["id"]
    with server.client(server.token("peer-owner")) as client:
        answer: dict[str, object] = client.get(
            "/trpc/gastown.getTown", params={"input": msgspec.json.encode({"townId": town_id}).decode()}
        ).json()["result"]["data"]
    return answer


@pytest.fixture(scope="module")
def peer_url(
    server: RunningServer, town: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    assert (PEER_DIR / "node_modules" / "@trpc" / "server").exists(), (
        "run `npm ci --prefix scripts/node_peer` (scripts/test does)"
    )
    towns_file = tmp_path_factory.mktemp("peer") / "towns.json"
    towns_file.write_bytes(msgspec.json.encode([town]))
    port = free_port()
    env = dict(
        os.environ,
        NODE_ENV="production",
        NEXTAUTH_SECRET=server.secret,
        PEER_TOWNS_FILE=str(towns_file),
        PORT=str(port),
    )
    process = subprocess.Popen(
        ["node", "server.mjs"], cwd=PEER_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/trpc/gastown.getTown", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, "the Node peer did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def get_town(base_url: str, town_id: object, token: str | None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(
        f"{base_url}/trpc/gastown.getTown",
        params={"input": msgspec.json.encode({"townId": town_id}).decode()},
        headers=headers,
        timeout=10,
    )
    return response.status_code, response.json()


def raw_token(secret: str, claims: dict[str, object]) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


def test_the_peer_answers_the_owner_exactly_as_we_do(
    server: RunningServer, town: dict[str, object], peer_url: str
) -> None:
    token = server.token("peer-owner")
    ours, theirs = get_town(server.base_url, town["id"], token), get_town(peer_url, town["id"], token)
    assert ours == theirs
    assert ours[0] == 200


@pytest.mark.parametrize(
    "caller",
    ["no token", "bad signature", "expired", "no gastown access", "another user", "empty user id"],
)
def test_the_peer_refuses_the_same_callers_with_the_same_errors(
    server: RunningServer, town: dict[str, object], peer_url: str, caller: str
) -> None:
    tokens: dict[str, str | None] = {
        "no token": None,
        "bad signature": raw_token(
            "another-secret-0123456789abcdef01234", {"kiloUserId": "peer-owner", "gastownAccess": True}
        ),
        "expired": raw_token(
            server.secret, {"kiloUserId": "peer-owner", "gastownAccess": True, "exp": int(time.time()) - 5}
        ),
        "no gastown access": server.token("peer-owner", gastown_access=False),
        "another user": server.token("someone-else"),
        "empty user id": raw_token(server.secret, {"kiloUserId": "", "gastownAccess": True}),
    }
    token = tokens[caller]
    ours, theirs = get_town(server.base_url, town["id"], token), get_town(peer_url, town["id"], token)
    assert ours == theirs
    assert ours[0] in (401, 403, 404)
