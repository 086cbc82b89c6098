"""The one procedure table: every `gastown.*` path, its kind, input Struct, access rule, handler."""

from __future__ import annotations

from rpc.procedures import (
    admin,
    agent_runtime,
    agents,
    beads,
    convoys,
    fork,
    lineage,
    rigs,
    status,
    towns,
    wasteland,
)
from rpc.router import Procedure, Router


def all_procedures() -> list[Procedure]:
    return [
        *towns.PROCEDURES,
        *rigs.PROCEDURES,
        *beads.PROCEDURES,
        *convoys.PROCEDURES,
        *agents.PROCEDURES,
        *status.PROCEDURES,
        *wasteland.PROCEDURES,
        *agent_runtime.PROCEDURES,
        *admin.PROCEDURES,
        *fork.PROCEDURES,
        *lineage.PROCEDURES,
    ]


def build_router() -> Router:
    return Router(all_procedures())
