"""The reconciler queue (`town_events`): facts recorded by operations for the town's reconciler to
apply later. Rows start unprocessed (`processed_at` NULL); this service only appends them."""

from __future__ import annotations

from typing import Any

import apsw

from town.bead_events import json_text
from town.clock import new_id, now_iso


def record_town_event(
    conn: apsw.Connection,
    event_type: str,
    *,
    agent_id: str | None = None,
    bead_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> str:
    """Append one unprocessed event; returns its id."""
    event_id = new_id()
    conn.execute(
        "INSERT INTO town_events (event_id, event_type, agent_id, bead_id, payload, created_at,"
        " processed_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
        (event_id, event_type, agent_id, bead_id, json_text(payload or {}), now_iso()),
    )
    return event_id
