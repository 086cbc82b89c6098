"""Runs the Node tests (tests/node/*.test.mjs): the real @trpc/client against the real server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.server import RunningServer

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@pytest.mark.parametrize("script", ["client.test.mjs", "fork.test.mjs", "fork_progress.test.mjs", "streams.test.mjs"])
def test_real_trpc_client(server: RunningServer, script: str) -> None:
    assert (NODE_DIR / "node_modules" / "@trpc" / "client").exists(), "run `npm ci --prefix tests/node` (scripts/test does)"
    env = dict(
        os.environ,
        GASTOWN_URL=server.base_url,
        GASTOWN_TOKEN=server.token(f"node-{script}"),
        GASTOWN_OTHER_TOKEN=server.token(f"node-other-{script}"),  # another user, for access checks
    )
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", script],
        check=False,
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
