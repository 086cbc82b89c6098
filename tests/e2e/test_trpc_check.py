"""The shared conformance checker (../shared/tools/trpc-check) against the real server.

It drives the real @trpc/client through every link plus raw HTTP/WebSocket edge cases; all
of its core cases must pass, including SSE and WebSocket subscriptions (watchTownEvents).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.server import RunningServer
from tests.trpc import mutate

ROOT = Path(__file__).resolve().parents[2]
# The checker lives in ../shared beside the project (DEVELOPERS.md); TRPC_CHECK_DIR overrides.
_CANDIDATES = [
    Path(os.environ["TRPC_CHECK_DIR"]) if os.environ.get("TRPC_CHECK_DIR") else None,
    ROOT.parent / "shared" / "tools" / "trpc-check",
    Path("/work/shared/tools/trpc-check"),
]
CHECKER = next((c / "client.mjs" for c in _CANDIDATES if c is not None and (c / "client.mjs").exists()), ROOT.parent / "shared" / "tools" / "trpc-check" / "client.mjs")
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"


def test_trpc_check_reports_no_failure(server: RunningServer, tmp_path: Path) -> None:
    if not CHECKER.exists():
        pytest.fail(f"conformance checker not found at {CHECKER}")
    org = str(uuid.uuid4())
    token = server.token("checker", orgs={org: "member"})
    me = server.client(token)
    town = mutate(me, "createTown", {"name": "checked"})["id"]
    rig = mutate(me, "createRig", {"townId": town, "name": "r", "gitUrl": "https://github.com/acme/r.git"})["id"]
    for i in range(3):
        mutate(me, "createBead", {"rigId": rig, "title": f"bead {i}"})
    owner = server.client(server.token("org-owner", orgs={org: "owner"}))
    org_town = mutate(owner, "createOrgTown", {"organizationId": org, "name": "not mine to configure"})["id"]

    # The checker imports @trpc/client relative to itself: run a copy beside our node_modules.
    work = tmp_path / "checker"
    work.mkdir()
    shutil.copy(CHECKER, work / "client.mjs")
    (work / "node_modules").symlink_to(NODE_MODULES)
    env = dict(
        os.environ,
        TRPC_URL=server.trpc_url,
        TRPC_CHECK_PREFIX="gastown.",
        TRPC_CHECK_AUTH=token,
        TRPC_CHECK_TOWN_ID=town,
        TRPC_CHECK_FORK_INPUT=json.dumps({"sourceTownId": town, "newTownName": "probe-fork"}),
        TRPC_CHECK_MISSING_ID=str(uuid.uuid4()),
        TRPC_CHECK_SUB_PATH="watchTownEvents",
        TRPC_CHECK_SUB_INPUT=json.dumps({"townId": town, "pollMs": 100}),
        TRPC_CHECK_FORBIDDEN=json.dumps(
            {"type": "mutation", "path": "gastown.updateTownConfig", "input": {"townId": org_town, "config": {}}}
        ),
    )
    env.pop("TRPC_CHECK_SKIP", None)
    result = subprocess.run(["node", "client.mjs", "--check"], check=False, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    assert result.returncode == 0, output
    assert " 0 failed" in summary and " 0 skipped" in summary, output
