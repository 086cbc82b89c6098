"""A short seeded run of scripts/fuzz.py against a server of its own (the full run is the script's)."""

from __future__ import annotations

import re

from tests.e2e.test_scripts import run_script

TRANSPORTS = ("jsonrpc", "jsonrpc-batch", "sse", "trpc-batch", "trpc-get", "trpc-post", "websocket")


def test_seeded_fuzz_run_finds_no_wrong_answer_on_any_transport() -> None:
    result = run_script("fuzz.py", "--serve", "--requests", "300", "--seed", "1", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failures: 0" in result.stdout
    counts = dict(re.findall(r"^\s+([a-z-]+)\s+(\d+) requests\s+0 failures$", result.stdout, re.MULTILINE))
    assert set(TRANSPORTS) <= set(counts), result.stdout
    assert sum(int(n) for n in counts.values()) >= 300
