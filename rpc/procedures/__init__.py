"""The one procedure table: every `gastown.*` path, its kind, input Struct, access rule, handler."""

from __future__ import annotations

from rpc.procedures import beads, fork, rigs, towns
from rpc.router import Procedure, Router


def all_procedures() -> list[Procedure]:
    return [*towns.PROCEDURES, *rigs.PROCEDURES, *beads.PROCEDURES, *fork.PROCEDURES]


def build_router() -> Router:
    return Router(all_procedures())
