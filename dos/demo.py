"""The demo data dev mode seeds (and scripts/seed_town.py builds at any size).

Towns are created through the same lifecycle as createTown/createRig, then their history is
bulk-written by `town.demo.populate_town` inside the town's own object.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from dos import lifecycle
from dos.runtime import ObjectRuntime
from dos.town_do import TownDO
from town.config import TownConfigUpdate

DEMO_MARKER = ".demo-seeded"

DEMO_RIGS = (
    ("gastown-web", "https://github.com/example/gastown-web.git", "main"),
    ("gastown-api", "https://github.com/example/gastown-api.git", "main"),
    ("infra", "https://gitlab.com/example/infra.git", "trunk"),
)

# Demo values only: they show how env vars are masked and how forks treat them.
DEMO_CONFIG = {
    "env_vars": {"NODE_ENV": "production", "SENTRY_DSN": "https://demo-key@sentry.example/42", "API_BASE": "https://api.example"},
    "default_model": "anthropic/claude-sonnet-4.6",
    "small_model": "anthropic/claude-haiku-4.5",
    "role_models": {"polecat": "anthropic/claude-sonnet-4.6", "refinery": "anthropic/claude-opus-4.1"},
    "max_polecats_per_rig": 4,
    "git_author_name": "Gastown Demo",
    "git_author_email": "demo@gastown.example",
    "custom_instructions": {"polecat": "Write tests first. Keep pull requests small."},
    "github_cli_pat": "ghp_demoDemoDemoDemoDemoDemoDemo0000",
}


async def build_town(
    runtime: ObjectRuntime,
    mint: Callable[[str], str],
    *,
    owner: lifecycle.Owner,
    name: str,
    beads: int,
    events_per_bead: int,
    seed: int,
    rigs: tuple[tuple[str, str, str], ...] = DEMO_RIGS,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Create a town with rigs and config through the normal flows, then fill its history."""
    town = await lifecycle.create_town(runtime, mint, owner=owner, name=name)
    rig_ids = []
    for rig_name, git_url, branch in rigs:
        rig = await lifecycle.create_rig(
            runtime,
            owner_kind=owner.kind,
            owner_id=owner.id,
            town_id=town.id,
            user_id=owner.created_by_user_id,
            name=rig_name,
            git_url=git_url,
            default_branch=branch,
            platform_integration_id=None,
            kilocode_token=None,
        )
        rig_ids.append(rig.id)
    stub = runtime.namespace(TownDO).get(town.id)
    await stub.call(TownDO.update_config, msgspec.convert(DEMO_CONFIG, TownConfigUpdate))
    await stub.call(
        TownDO.populate_demo,
        rig_ids=rig_ids,
        beads=beads,
        events_per_bead=events_per_bead,
        seed=seed,
        actor_user_id=owner.created_by_user_id,
        progress=progress,
    )
    return town.id


async def seed_demo(
    runtime: ObjectRuntime, mint: Callable[[str], str], *, user_id: str, org_id: str
) -> list[str]:
    personal = await build_town(
        runtime, mint, owner=lifecycle.Owner("user", user_id, user_id), name="Demo Town", beads=300, events_per_bead=5, seed=1
    )
    org = await build_town(
        runtime,
        mint,
        owner=lifecycle.Owner("org", org_id, user_id),
        name="Demo Org Town",
        beads=120,
        events_per_bead=4,
        seed=2,
        rigs=DEMO_RIGS[:2],
    )
    return [personal, org]
