"""Replays each front-end page's on-load calls (tests/node/pages.test.mjs) through the real
@trpc/client, against the demo data (GASTOWN_DEMO=1): a personal town and an org town."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from rpc.startup import DEV_ORG_ID, DEV_USER_ID
from tests.server import RunningServer
from tests.trpc import query

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_front_end_pages(demo_server: RunningServer) -> None:
    assert (NODE_DIR / "node_modules" / "@trpc" / "client").exists(), (
        "run `npm ci --prefix tests/node` (scripts/test does)"
    )
    token = demo_server.dev_token()
    with demo_server.client(token) as client:
        personal = [t for t in query(client, "listTowns") if t["name"] == "Demo Town"]
        org = [
            t
            for t in query(client, "listOrgTowns", {"organizationId": DEV_ORG_ID})
            if t["name"] == "Demo Org Town"
        ]
    assert len(personal) == 1 and len(org) == 1, (personal, org)
    env = dict(
        os.environ,
        GASTOWN_URL=demo_server.base_url,
        GASTOWN_TOKEN=token,
        GASTOWN_PERSONAL_TOWN_ID=personal[0]["id"],
        GASTOWN_ORG_TOWN_ID=org[0]["id"],
        GASTOWN_ORG_ID=DEV_ORG_ID,
        GASTOWN_DEV_USER_ID=DEV_USER_ID,
    )
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "pages.test.mjs"],
        check=False,
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
