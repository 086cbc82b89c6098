"""What a fork's status is (issue 7): the `ForkStatus` Struct, how its percentage is weighted,
and the status a stored idempotency record stands for.

A fork with an idempotencyKey has a status keyed by (caller, key). While it runs the status
lives in this process (dos/fork_progress.py); when it ends, its final status (done or failed)
is written into the caller's idempotency record in GastownUserDO with the record's own change,
so it stays readable as long as the record, after a restart too.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Literal

import msgspec

from dos import lifecycle
from dos.owner_do import GastownUserDO, OwnerDO
from dos.runtime import ObjectRuntime
from town.clock import now_iso
from town.errors import DomainError, NotFound
from town.fork_payload import RowTotals

ForkStatusPhase = Literal["export", "import", "indexes", "config", "rigs", "publish", "done", "failed"]
TERMINAL: Final = frozenset({"done", "failed"})
PHASE_RANK: Final[dict[str, int]] = {
    p: i for i, p in enumerate(("export", "import", "indexes", "config", "rigs", "publish", "done"))
} | {"failed": 6}  # a fork's phases in order; done and failed both end it
# The percentage each phase starts at: copying rows is most of a fork's time.
_START: Final[dict[str, float]] = {
    "export": 0.0,
    "import": 2.0,
    "indexes": 85.0,
    "config": 93.0,
    "rigs": 95.0,
    "publish": 98.0,
    "done": 100.0,
}


class ForkError(msgspec.Struct, frozen=True):
    code: str  # a tRPC error key, as the fork call itself answered
    message: str  # never a secret: a domain error's message or a generic one


class ForkStatus(msgspec.Struct, kw_only=True, frozen=True):
    idempotencyKey: str
    phase: ForkStatusPhase
    rowsDone: int
    rowsTotal: int
    percent: float  # 0..100, never decreasing; 100 only when done
    townId: str | None  # the new town's id (visible once done); null when failed
    error: ForkError | None  # set when failed only
    updatedAt: str


def percent_of(phase: str, done: int, total: int) -> float:
    if phase == "export":
        return 1.0 if total else 0.0
    if phase == "import":
        share = done / total if total else 1.0
        return round(_START["import"] + (_START["indexes"] - _START["import"]) * min(share, 1.0), 2)
    return _START.get(phase, 0.0)


def failure_of(exc: BaseException) -> ForkError:
    """What a failed status says: a domain error as the caller was told it, anything else
    generically (its cause is logged by the RPC layer, never stored)."""
    if isinstance(exc, DomainError):
        return ForkError(exc.code, exc.message)
    if isinstance(exc, asyncio.CancelledError):
        return ForkError("CLIENT_CLOSED_REQUEST", "The fork was cancelled before it finished")
    return ForkError("INTERNAL_SERVER_ERROR", "The fork failed because of an internal error")


def not_found(key: str) -> NotFound:
    # The same answer whether nobody or somebody else used the key.
    return NotFound(f"No fork with idempotencyKey {key!r} was started by this caller")


def stored_view(value: Any) -> ForkStatus | None:
    """A status persisted with an idempotency record (None if absent or unreadable)."""
    if not isinstance(value, dict):
        return None
    try:
        return msgspec.convert(value, ForkStatus)
    except msgspec.ValidationError:
        return None


def done_from_result(key: str, result_json: str, at: str | None) -> ForkStatus:
    """The done status of a fork known only by its result (published before its record said
    done, e.g. a crash right after publishing): the rows it copied, its town."""
    result = msgspec.json.decode(result_json)
    copied = result.get("copied") or {}
    rows = sum(int(copied.get(table, 0)) for table in RowTotals.__struct_fields__)
    town = result.get("town") or {}
    return ForkStatus(
        idempotencyKey=key, phase="done", rowsDone=rows, rowsTotal=rows, percent=100.0,
        townId=town.get("id"), error=None, updatedAt=at or now_iso(),
    )


def interrupted(key: str, at: str | None) -> ForkStatus:
    """An attempt that stopped without an end of its own (the process died): nothing of it is
    visible, and a retry with the same key starts over."""
    return ForkStatus(
        idempotencyKey=key, phase="failed", rowsDone=0, rowsTotal=0, percent=0.0, townId=None,
        error=ForkError("INTERNAL_SERVER_ERROR", "The fork was interrupted; retry with the same idempotencyKey"),
        updatedAt=at or now_iso(),
    )


def starting(key: str) -> ForkStatus:
    """A retry running here that has not reached its first phase yet."""
    return ForkStatus(
        idempotencyKey=key, phase="export", rowsDone=0, rowsTotal=0, percent=0.0, townId=None,
        error=None, updatedAt=now_iso(),
    )


async def stored_status(runtime: ObjectRuntime, caller_id: str, key: str, *, running: bool) -> ForkStatus | None:
    """The status the caller's idempotency record for `key` stands for (None: no fork).
    `running` says whether an attempt with the key runs in this process right now."""
    users = runtime.namespace(GastownUserDO)
    if not users.exists(caller_id):  # a read creates no owner object
        return None
    record = await users.get(caller_id).call(GastownUserDO.fork_record, key)
    if record is None:
        return None
    status = stored_view(record.get("status"))
    if record.get("state") == "done":
        return status or done_from_result(key, record["result"], record.get("created_at"))
    if record.get("state") != "pending":
        return status
    if running:
        return starting(key)
    # Pending and not running: the attempt was interrupted. If it got as far as publishing,
    # the fork is done (a retry returns that result).
    target = record.get("target")
    if isinstance(target, list) and len(target) == 2 and target[0] in ("user", "org"):
        owners_ns = lifecycle.owner_namespace(runtime, target[0])
        if owners_ns.exists(target[1]):
            published = await owners_ns.get(target[1]).call(OwnerDO.published_fork, caller_id, key)
            if published is not None:
                return done_from_result(key, published, record.get("created_at"))
    return interrupted(key, record.get("created_at"))
