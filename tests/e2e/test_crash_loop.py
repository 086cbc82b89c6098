"""scripts/crash_fork.py, short: forks and bead writes while the server is SIGKILLed at random
moments (and at named fork steps), restarted and checked; no violation."""

from __future__ import annotations

import re

from tests.e2e.test_scripts import run_script


def test_short_crash_loop_finds_no_violation() -> None:
    result = run_script(
        "crash_fork.py", "--iterations", "5", "--seed", "11", "--beads", "700", "--fault-share", "0.4", timeout=180
    )

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "iterations: 5, violations: 0" in out, out
    assert "VIOLATION" not in out, out
    killed = re.findall(r"^iteration \d+/5: (kill after \d+ ms|fault \w+): (\d+) forks attempted", out, re.MULTILINE)
    assert len(killed) == 5, out
    assert sum(int(n) for _, n in killed) > 0, "no fork was running when the server died"
