"""Procedures that need the agent/container runtime, which this deployment does not run.

Each keeps upstream's input, access rule and declared output, then answers
PRECONDITION_FAILED saying so: a front end shows an error state instead of a missing
procedure. `enrichBead` answers null, as upstream does when its AI binding is absent.
"""

from __future__ import annotations

from typing import Literal, NoReturn

import msgspec

from rpc.access import AdminRule, TownRule
from rpc.errors import RpcError
from rpc.inputs import (
    EnrichBeadInput,
    ResizePtyInput,
    SendMessageInput,
    SlingInput,
    TownAgentInput,
    TownIdInput,
)
from rpc.router import CallContext, Procedure
from town.agents import Agent
from town.beads import Bead

G = "gastown."

RUNTIME_UNAVAILABLE = (
    "The agent runtime is not available in this deployment: {what} needs a running town "
    "container and agents, which this server does not run"
)


class SlingResult(msgspec.Struct, kw_only=True):
    bead: Bead
    agent: Agent


class MayorSendResult(msgspec.Struct, kw_only=True):
    agentId: str
    sessionStatus: Literal["idle", "active", "starting"]


class StreamTicket(msgspec.Struct, kw_only=True):
    url: str
    ticket: str


class PtyInfo(msgspec.Struct, kw_only=True):
    id: str


class PtySession(msgspec.Struct, kw_only=True):
    pty: PtyInfo
    wsUrl: str


class BeadSuggestion(msgspec.Struct, kw_only=True):
    title: str
    labels: list[str]


def _unavailable(ctx: CallContext) -> NoReturn:
    raise RpcError("PRECONDITION_FAILED", RUNTIME_UNAVAILABLE.format(what=ctx.path))


async def sling(ctx: CallContext, p: SlingInput) -> SlingResult:
    """Create a bead and hand it to a polecat (needs the agent runtime)."""
    _unavailable(ctx)


async def send_message(ctx: CallContext, p: SendMessageInput) -> MayorSendResult:
    """Send a chat message to the town's mayor (needs the agent runtime)."""
    _unavailable(ctx)


async def ensure_mayor(ctx: CallContext, p: TownIdInput) -> MayorSendResult:
    """Start the mayor's session if it is not running (needs the agent runtime)."""
    _unavailable(ctx)


async def get_agent_stream_url(ctx: CallContext, p: TownAgentInput) -> StreamTicket:
    """A ticket for an agent's live event stream (needs the agent runtime)."""
    _unavailable(ctx)


async def create_pty_session(ctx: CallContext, p: TownAgentInput) -> PtySession:
    """Open a terminal on an agent (needs the agent runtime)."""
    _unavailable(ctx)


async def resize_pty_session(ctx: CallContext, p: ResizePtyInput) -> None:
    """Resize an agent terminal (needs the agent runtime)."""
    _unavailable(ctx)


async def restart_container(ctx: CallContext, p: TownIdInput) -> None:
    """Restart or destroy the town's container (needs the container runtime)."""
    _unavailable(ctx)


async def enrich_bead(ctx: CallContext, p: EnrichBeadInput) -> BeadSuggestion | None:
    """Suggest a title and labels for a task description; null: no AI model is configured."""
    return None


PROCEDURES = [
    # sling creates a bead (then hands it to a polecat): a write, like createBead (rpc.md §3).
    Procedure(G + "sling", "mutation", SlingInput, TownRule("write", via="rig"), sling),
    Procedure(G + "sendMessage", "mutation", SendMessageInput, TownRule("read"), send_message),
    Procedure(G + "ensureMayor", "mutation", TownIdInput, TownRule("read"), ensure_mayor),
    Procedure(G + "getAgentStreamUrl", "query", TownAgentInput, TownRule("read"), get_agent_stream_url),
    Procedure(G + "createPtySession", "mutation", TownAgentInput, TownRule("read"), create_pty_session),
    Procedure(G + "resizePtySession", "mutation", ResizePtyInput, TownRule("read"), resize_pty_session),
    Procedure(G + "forceRestartContainer", "mutation", TownIdInput, TownRule("configure"), restart_container),
    Procedure(G + "destroyContainer", "mutation", TownIdInput, TownRule("configure"), restart_container),
    Procedure(G + "adminForceRestartContainer", "mutation", TownIdInput, AdminRule(), restart_container),
    Procedure(G + "enrichBead", "mutation", EnrichBeadInput, TownRule("read"), enrich_bead),
]
