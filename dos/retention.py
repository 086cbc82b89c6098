"""Sweeping expired fork idempotency records and publish markers (issue 9).

The window itself (`GASTOWN_IDEMPOTENCY_TTL_SECONDS`, 7 days by default) and what expired
means live beside the records in dos/owner_do.py: an expired key already reads as unused.
This module deletes them, once at startup and then every `GASTOWN_RETENTION_SWEEP_SECONDS`
(an hour by default, at most the window), one owner object at a time: each sweep is one short
call on that object, so it queues behind that object's calls like any other.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Final

from dos.owner_do import GastownOrgDO, GastownUserDO, OwnerDO, retention_cutoff, ttl_seconds
from dos.runtime import ObjectRuntime

log = logging.getLogger("gastown.retention")

SWEEP_ENV: Final = "GASTOWN_RETENTION_SWEEP_SECONDS"
DEFAULT_SWEEP_SECONDS: Final = 3600.0


def sweep_interval() -> float:
    raw = os.environ.get(SWEEP_ENV)
    interval = float(raw) if raw else DEFAULT_SWEEP_SECONDS
    return max(0.05, min(interval, ttl_seconds()))


async def sweep_expired(runtime: ObjectRuntime) -> int:
    """Delete every expired record and marker; returns how many."""
    cutoff = retention_cutoff()
    removed = 0
    for cls in (GastownUserDO, GastownOrgDO):
        ns = runtime.namespace(cls)
        for owner_id in ns.ids_on_disk():
            try:
                removed += await ns.get(owner_id).call(OwnerDO.sweep_fork_keys, cutoff)
            except Exception:  # best effort: one unreadable object must not stop the sweep (or startup)
                log.exception("retention sweep skipped %s %s", cls.__name__, owner_id)
    if removed:
        log.info("removed %d expired fork idempotency record(s) and marker(s)", removed)
    return removed


async def sweep_periodically(runtime: ObjectRuntime) -> None:
    """Runs until cancelled (at shutdown)."""
    while True:
        await asyncio.sleep(sweep_interval())
        try:
            await sweep_expired(runtime)
        except Exception:  # best effort: a failed sweep is retried at the next interval
            log.exception("retention sweep failed")
