"""Bead, event and convoy procedures, and the town event subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import msgspec
from msgspec import UNSET

from dos.town_do import TownDO
from rpc.access import TownRule
from rpc.errors import RpcError
from rpc.inputs import (
    CreateBeadInput,
    DeleteBeadInput,
    DeleteBeadsByStatusInput,
    GetBeadEventsInput,
    GetTownEventsInput,
    ListBeadsInput,
    RigBeadInput,
    UpdateBeadInput,
    WatchTownEventsInput,
)
from rpc.procedures.common import town_stub
from rpc.router import CallContext, Procedure
from rpc.tracked import Tracked
from town.bead_events import BeadEvent
from town.beads import Bead, BeadUpdate
from town.clock import iso

G = "gastown."
HELD_LABEL = "gt:held"
WATCH_PAGE = 500


class Deleted(msgspec.Struct):
    deleted: int


def _rig_id(p: object) -> str | None:
    value = getattr(p, "rigId", None)
    return None if value is None else str(value)


async def create_bead(ctx: CallContext, p: CreateBeadInput) -> Bead:
    labels = list(p.labels or [])
    if not p.startImmediately and HELD_LABEL not in labels:
        labels.append(HELD_LABEL)
    return await town_stub(ctx).call(
        TownDO.create_bead,
        type="issue",
        title=p.title,
        body=p.body,
        rig_id=str(p.rigId),
        labels=labels,
        created_by=ctx.caller.user_id,
    )


async def update_bead(ctx: CallContext, p: UpdateBeadInput) -> Bead:
    fields = {k: v for k, v in msgspec.structs.asdict(p).items() if k not in ("rigId", "beadId", "townId") and v is not UNSET}
    if not fields:
        raise RpcError("BAD_REQUEST", "At least one field to update is required")
    for key in ("rig_id", "parent_bead_id"):
        if fields.get(key) is not None:
            fields[key] = str(fields[key])
    if "depends_on" in fields:
        fields["depends_on"] = [str(d) for d in fields["depends_on"]]
    town = town_stub(ctx)
    bead_id = str(p.beadId)
    await _require_bead_in_rig(town, bead_id, str(p.rigId))
    if fields.get("rig_id") is not None and await town.call(TownDO.get_rig, fields["rig_id"]) is None:
        raise RpcError("NOT_FOUND", f"Rig {fields['rig_id']} not found")
    return await town.call(TownDO.update_bead, bead_id, BeadUpdate(**fields), actor=ctx.caller.user_id)


async def _require_bead_in_rig(town: object, bead_id: str, rig_id: str) -> Bead:
    bead = await town.call(TownDO.get_bead, bead_id)  # type: ignore[attr-defined]
    if bead is None or bead.rig_id != rig_id:
        raise RpcError("NOT_FOUND", f"Bead {bead_id} not found")
    return bead


async def delete_bead(ctx: CallContext, p: DeleteBeadInput) -> Deleted:
    ids = [str(b) for b in p.beadId] if isinstance(p.beadId, list) else [str(p.beadId)]
    return Deleted(await town_stub(ctx).call(TownDO.delete_beads_in_rig, str(p.rigId), ids))


async def list_beads(ctx: CallContext, p: ListBeadsInput) -> list[Bead]:
    return await town_stub(ctx).call(
        TownDO.list_beads, rig_id=_rig_id(p), status=p.status, type=p.type, limit=p.limit, offset=p.offset
    )


async def get_bead_events(ctx: CallContext, p: GetBeadEventsInput) -> list[BeadEvent]:
    return await town_stub(ctx).call(
        TownDO.list_bead_events,
        rig_id=str(p.rigId),
        bead_id=None if p.beadId is None else str(p.beadId),
        since=p.since,
        limit=p.limit,
    )


async def get_town_events(ctx: CallContext, p: GetTownEventsInput) -> list[BeadEvent]:
    return await town_stub(ctx).call(TownDO.list_bead_events, since=p.since, limit=p.limit)


async def start_bead(ctx: CallContext, p: RigBeadInput) -> Bead:
    """Release a held bead (drops the `gt:held` label) so it may be dispatched."""
    return await town_stub(ctx).call(TownDO.start_held_bead, str(p.beadId), str(p.rigId))


async def delete_beads_by_status(ctx: CallContext, p: DeleteBeadsByStatusInput) -> Deleted:
    """Delete the rig's beads in one status (optionally of one type), with their descendants."""
    return Deleted(await town_stub(ctx).call(TownDO.delete_beads_by_status, p.status, p.type, str(p.rigId)))


async def watch_town_events(ctx: CallContext, p: WatchTownEventsInput) -> AsyncIterator[Tracked[BeadEvent]]:
    """Bead events as they happen, oldest first: those after `since` (else the latest 10), then
    new ones as the town is polled every `pollMs`. Each is `tracked`: a client that reconnects
    with the last id it received (`lastEventId`) gets exactly the events after it.

    The cursor is inclusive of its millisecond and remembers the ids already sent there, so
    events written in the same millisecond as the last one sent are not lost; pages go
    forward from the cursor, so a burst larger than a page is sent whole, page by page. The
    tracked id carries that cursor (`<created_at>|<ids sent at it>`), so a resume is as exact.
    """
    town = town_stub(ctx)
    cursor: str | None = p.since
    seen_at_cursor: set[str] = set()
    if p.lastEventId is not None:
        cursor, seen_at_cursor = await _resume_cursor(town, p.lastEventId)
    elif cursor is None:
        latest = await town.call(TownDO.list_bead_events, limit=10)
        for event in reversed(latest):
            cursor, seen_at_cursor = _advance(cursor, seen_at_cursor, event)
            yield Tracked(_event_id(cursor, seen_at_cursor), event)
    past_cursor_ms = False  # set when one millisecond alone fills a page: step over it
    while True:
        since = cursor if past_cursor_ms else (_one_ms_before(cursor) if cursor else None)
        page = await town.call(TownDO.list_bead_events, since=since, limit=WATCH_PAGE, oldest_first=True)
        fresh = [e for e in page if not (e.created_at == cursor and e.bead_event_id in seen_at_cursor)]
        for event in fresh:
            cursor, seen_at_cursor = _advance(cursor, seen_at_cursor, event)
            yield Tracked(_event_id(cursor, seen_at_cursor), event)
        past_cursor_ms = len(page) == WATCH_PAGE and not fresh
        if len(page) < WATCH_PAGE:
            await asyncio.sleep(p.pollMs / 1000)


MAX_IDS_IN_EVENT_ID = 8  # beyond: "every event of that millisecond up to this id, in id order"


def _event_id(cursor: str, seen: set[str]) -> str:
    if len(seen) <= MAX_IDS_IN_EVENT_ID:
        return cursor + "|" + ",".join(sorted(seen))
    return cursor + "|<=" + max(seen)


async def _resume_cursor(town: object, last_event_id: str) -> tuple[str, set[str]]:
    """The cursor an event id was sent at (see `_event_id`)."""
    cursor, sep, ids = last_event_id.partition("|")
    if not sep or not cursor or not ids:
        raise RpcError("BAD_REQUEST", f"Invalid lastEventId {last_event_id!r}")
    if not ids.startswith("<="):
        return cursor, set(ids.split(","))
    upto = ids.removeprefix("<=")
    page = await town.call(  # type: ignore[attr-defined]
        TownDO.list_bead_events, since=_one_ms_before(cursor), limit=WATCH_PAGE, oldest_first=True
    )
    return cursor, {e.bead_event_id for e in page if e.created_at == cursor and e.bead_event_id <= upto}


def _advance(cursor: str | None, seen: set[str], event: BeadEvent) -> tuple[str, set[str]]:
    if event.created_at != cursor:
        return event.created_at, {event.bead_event_id}
    seen.add(event.bead_event_id)
    return cursor, seen


def _one_ms_before(stamp: str) -> str:
    try:
        moment = datetime.fromisoformat(stamp)  # Python 3.11 reads the trailing Z
    except ValueError:
        return stamp
    return iso(moment - timedelta(milliseconds=1))


PROCEDURES = [
    Procedure(G + "createBead", "mutation", CreateBeadInput, TownRule("write", via="rig"), create_bead),
    Procedure(G + "updateBead", "mutation", UpdateBeadInput, TownRule("write", via="rig"), update_bead),
    Procedure(G + "deleteBead", "mutation", DeleteBeadInput, TownRule("write", via="rig"), delete_bead),
    Procedure(G + "listBeads", "query", ListBeadsInput, TownRule("read", via="rig"), list_beads),
    Procedure(G + "getBeadEvents", "query", GetBeadEventsInput, TownRule("read", via="rig"), get_bead_events),
    Procedure(G + "getTownEvents", "query", GetTownEventsInput, TownRule("read"), get_town_events),
    Procedure(G + "startBead", "mutation", RigBeadInput, TownRule("write", via="rig"), start_bead),
    Procedure(G + "deleteBeadsByStatus", "mutation", DeleteBeadsByStatusInput, TownRule("write", via="rig"), delete_beads_by_status),
    Procedure(G + "watchTownEvents", "subscription", WatchTownEventsInput, TownRule("read"), watch_town_events),
]
