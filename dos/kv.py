"""Key-value storage inside an object's own database (`_kv`, value = JSON text).

Functions take the connection so KV writes join whatever transaction the caller has open.
"""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

KV_DDL = "CREATE TABLE IF NOT EXISTS _kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

_encode = msgspec.json.Encoder().encode


def kv_get(conn: apsw.Connection, key: str) -> Any | None:
    row = conn.execute("SELECT value FROM _kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else msgspec.json.decode(row[0])


def kv_put(conn: apsw.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO _kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, _encode(value).decode()),
    )


def kv_delete(conn: apsw.Connection, key: str) -> None:
    conn.execute("DELETE FROM _kv WHERE key = ?", (key,))


def kv_items(conn: apsw.Connection, prefix: str) -> list[tuple[str, Any]]:
    """Every (key, value) whose key starts with `prefix`, by a range scan of the primary key."""
    high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return [
        (key, msgspec.json.decode(raw))
        for key, raw in conn.execute("SELECT key, value FROM _kv WHERE key >= ? AND key < ?", (prefix, high))
    ]
