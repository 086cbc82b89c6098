"""scripts/load.py, short: mixed page loads, bead writes, config updates and forks from many
clients against the real server; zero errors, no 5xx, no acknowledged write lost."""

from __future__ import annotations

import re

from tests.e2e.test_scripts import run_script


def test_short_mixed_load_has_no_errors_and_loses_no_write() -> None:
    result = run_script("load.py", "--clients", "20", "--seconds", "5", timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "errors: 0 (5xx / INTERNAL_SERVER_ERROR: 0)" in out, out
    assert re.search(r"lost via API: 0; lost in the SQLite files: 0$", out, re.MULTILINE), out
    assert "towns left over: 0" in out, out
    writes = int(re.search(r"acknowledged bead writes: ([\d,]+)", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    forks = int(re.search(r"forks: (\d+) made", out).group(1))  # type: ignore[union-attr]
    assert writes > 0 and forks > 0, out
    for procedure in ("getTown", "listRigs", "getTownConfig", "listBeads", "getTownEvents", "getAlarmStatus",
                      "getMergeQueueData", "listAgents", "getRig", "createBead", "updateBead", "updateTownConfig",
                      "forkTown", "deleteTown"):
        assert re.search(rf"^{procedure}\s+[\d,]+\s", out, re.MULTILINE), f"{procedure} never ran:\n{out}"


def test_load_refuses_a_url_that_is_not_loopback() -> None:
    result = run_script("load.py", "--url", "http://example.com:8787", "--token", "t", "--seconds", "1")

    assert result.returncode != 0
    assert "only http://127.0.0.1 is allowed" in result.stderr
