"""scripts/seed_town.py, bench_rpc.py and bench_fork.py run end to end.

Only exit status, output lines and database rows are checked, never timings: the numbers are
for people reading them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import apsw

from tests.server import ROOT, free_port


def run_script(name: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    # No inherited server settings: dev mode for seed_town, and the benches bring their own.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GASTOWN_") and k not in ("NEXTAUTH_SECRET", "TOKEN")
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def row_count(db_file: Path, table: str) -> int:
    conn = apsw.Connection(str(db_file), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        for (count,) in conn.execute(f"SELECT count(*) FROM {table}"):
            return int(count)
        raise AssertionError("count(*) returned no row")
    finally:
        conn.close()


def test_seed_town_writes_a_town_with_the_requested_beads(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_script(
        "seed_town.py", "--data-dir", str(data_dir), "--beads", "50", "--port", str(free_port())
    )

    assert result.returncode == 0, result.stderr
    match = re.search(r"^town id: ([0-9a-f-]{36})$", result.stdout, re.MULTILINE)
    assert match, result.stdout
    town_file = data_dir / "TownDO" / f"{match.group(1)}.sqlite3"
    assert town_file.exists()
    assert row_count(town_file, "beads") >= 50
    assert row_count(town_file, "rigs") == 3
    assert (data_dir / "GastownUserDO" / "dev-user.sqlite3").exists()
    assert "export TOKEN=" in result.stdout  # dev mode: data/dev-secret signs it


def test_seed_town_refuses_while_a_server_listens(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_script(
            "seed_town.py", "--data-dir", str(tmp_path / "data"), "--beads", "5", "--port", str(port)
        )

    assert result.returncode == 2
    assert "Stop it first" in result.stderr
    assert not (tmp_path / "data" / "TownDO").exists()


def test_bench_rpc_serve_reports_each_transport() -> None:
    result = run_script("bench_rpc.py", "--serve", "--seconds", "1", "--concurrency", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    for label in ("tRPC HTTP GET [http]", "JSON-RPC POST /rpc [jsonrpc]", "tRPC WebSocket [ws]"):
        assert re.search(
            rf"^{re.escape(label)} +[\d,]+ +[\d,]+ +[\d.]+ +[\d.]+ +0$", result.stdout, re.MULTILINE
        ), result.stdout
    assert "ratios (req/s): jsonrpc/http" in result.stdout


def test_bench_fork_serve_reports_forks_dry_runs_and_counts() -> None:
    result = run_script("bench_fork.py", "--runs", "2", "--beads", "100")

    assert result.returncode == 0, result.stdout + result.stderr
    for label in ("gastown.getTown", "forkTown dryRun", "forkTown"):
        assert re.search(rf"^{re.escape(label)} +\d+ +[\d.,]+", result.stdout, re.MULTILINE), result.stdout
    for line in (
        "fork median / getTown median:",
        "copied (fork 1):  beads",
        "skipped (fork 1):",
        "server peak RSS (VmHWM):",
    ):
        assert line in result.stdout
