"""Timestamps and ids in the model's conventions (ISO-8601 UTC with milliseconds and `Z`; UUID4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def now_iso() -> str:
    """Current time as `2026-04-13T09:30:00.000Z`, the format JS `toISOString()` produces."""
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())
