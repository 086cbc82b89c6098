"""scripts/serve's promise: SIGINT/SIGTERM stop the server cleanly, nothing half-written."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import apsw
import pytest

from tests.server import start_server
from tests.trpc import mutate, query


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_data_survives(tmp_path: Path, sig: int) -> None:
    server = start_server(tmp_path / "data")
    client = server.client(server.token("stopper"))
    town = mutate(client, "createTown", {"name": "durable"})["id"]
    rig = mutate(client, "createRig", {"townId": town, "name": "r", "gitUrl": "https://github.com/a/r.git"})["id"]
    errors: list[BaseException] = []

    def keep_writing() -> None:
        try:
            for i in range(200):
                mutate(client, "createBead", {"rigId": rig, "title": f"b{i}"})
        except BaseException as exc:  # noqa: BLE001 - the server goes away mid-loop on purpose
            errors.append(exc)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    threading.Event().wait(0.2)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it.
    assert server.stop(sig) in (0, -sig)
    writer.join()
    assert "Application shutdown complete" in server.log_text()

    path = server.data_dir / "TownDO" / f"{town}.sqlite3"
    with apsw.Connection(str(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        beads = db.execute("SELECT count(*) FROM beads").fetchone()[0]
        events = db.execute("SELECT count(*) FROM bead_events WHERE event_type = 'created'").fetchone()[0]
    assert beads == events  # every bead committed together with its `created` event

    again = start_server(tmp_path / "data")
    try:
        listed = query(again.client(again.token("stopper")), "listBeads", {"rigId": rig, "limit": 500})
        assert len(listed) == beads
    finally:
        again.stop()
