"""Runs tests/node/fork.test.mjs: gastown.forkTown through the real @trpc/client."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.server import RunningServer

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_fork_through_real_trpc_client(server: RunningServer) -> None:
    assert (NODE_DIR / "node_modules" / "@trpc" / "client").exists(), (
        "run `npm ci --prefix tests/node` (scripts/test does)"
    )
    env = dict(os.environ, GASTOWN_URL=server.base_url, GASTOWN_TOKEN=server.token("node-fork-user"))
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "fork.test.mjs"],
        check=False,
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
