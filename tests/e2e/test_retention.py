"""Retention (issue 9): fork idempotency records, their stored status and publish markers
expire after GASTOWN_IDEMPOTENCY_TTL_SECONDS and are swept, periodically and at startup;
an expired key behaves as unused. Through the real server, with a window of seconds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.fork_fixtures import kv, read_db
from tests.server import RunningServer, start_server
from tests.trpc import error_of, mutate, query

TTL = 2.0


def fork_keys(data: Path, cls: str, owner_id: str) -> list[str]:
    conn = read_db(data / cls / f"{owner_id}.sqlite3")
    try:
        return sorted(k for k in kv(conn) if k.startswith("fork:"))
    finally:
        conn.close()


def wait_until_swept(data: Path, cls: str, owner_id: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while fork_keys(data, cls, owner_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fork_keys(data, cls, owner_id) == []


def test_expired_fork_keys_are_swept_and_behave_as_unused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"GASTOWN_IDEMPOTENCY_TTL_SECONDS": str(TTL), "GASTOWN_RETENTION_SWEEP_SECONDS": "0.3"}
    server: RunningServer = start_server(data, extra_env=env)
    try:
        user = f"alice-{uuid.uuid4().hex[:6]}"
        alice = server.client(server.token(user))
        source = mutate(alice, "createTown", {"name": "source"})["id"]
        body = {"sourceTownId": source, "newTownName": "copy", "idempotencyKey": "k1"}
        first = mutate(alice, "forkTown", body)["town"]["id"]
        assert mutate(alice, "forkTown", body)["town"]["id"] == first  # within the window: the same fork
        assert query(alice, "getForkStatus", {"idempotencyKey": "k1"})["phase"] == "done"
        record = '["' + user + '","k1"]'
        assert fork_keys(data, "GastownUserDO", user) == ["fork:idempotency:k1", f"fork:published:{record}"]

        # Past the window the periodic sweep deletes the record (with its status) and the marker.
        wait_until_swept(data, "GastownUserDO", user, TTL + 5)
        assert error_of(query, alice, "getForkStatus", {"idempotencyKey": "k1"}).code == "NOT_FOUND"
        # The key is unused again: another input is no CONFLICT, and it is a new fork.
        again = mutate(alice, "forkTown", {**body, "newTownName": "another copy"})["town"]["id"]
        assert again != first
        assert {t["id"] for t in query(alice, "listTowns")} == {source, first, again}
    finally:
        server.stop()

    # Startup sweeps too (here the periodic sweep is an hour away).
    time.sleep(TTL + 0.2)
    restarted = start_server(data, extra_env={**env, "GASTOWN_RETENTION_SWEEP_SECONDS": "3600"})
    try:
        assert fork_keys(data, "GastownUserDO", user) == []
    finally:
        restarted.stop()


def test_the_window_defaults_to_seven_days() -> None:
    from dos.owner_do import DEFAULT_TTL_SECONDS

    assert DEFAULT_TTL_SECONDS == 7 * 24 * 3600 >= 24 * 3600


@pytest.mark.parametrize("stamp_age, expired", [(0.0, False), (TTL + 1, True)])
def test_an_expired_marker_reads_as_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp_age: float, expired: bool) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from dos.kv import kv_put
    from dos.owner_do import GastownOrgDO, _published_key
    from dos.runtime import ObjectRuntime
    from town.clock import iso

    monkeypatch.setenv("GASTOWN_IDEMPOTENCY_TTL_SECONDS", str(TTL))
    at = iso(datetime.now(UTC) - timedelta(seconds=stamp_age))

    def plant(org: GastownOrgDO) -> None:
        kv_put(org.conn, _published_key("u", "k"), {"result": "{}", "at": at})

    async def scenario() -> str | None:
        runtime = ObjectRuntime(tmp_path)
        org = runtime.namespace(GastownOrgDO).get(str(uuid.uuid4()))
        await org.call(plant)
        try:
            return await org.call(GastownOrgDO.published_fork, "u", "k")
        finally:
            await runtime.close()

    assert asyncio.run(scenario()) == (None if expired else "{}")
