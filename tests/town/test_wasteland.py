from __future__ import annotations

import uuid

import apsw
import msgspec
import pytest

from town.errors import BadRequest
from town.wasteland import WastelandConnection, connect, disconnect, get_connection


def _connect(town: apsw.Connection, wasteland_id: str, handle: str = "rig-a") -> WastelandConnection:
    return connect(
        town,
        wasteland_id=wasteland_id,
        upstream="org/commons",
        rig_handle=handle,
        dolthub_org="my-org",
    )


def test_connect_stores_an_active_row_and_returns_upstreams_shape(town: apsw.Connection) -> None:
    assert get_connection(town) is None
    made = _connect(town, "w1")
    assert str(uuid.UUID(made.connection_id)) == made.connection_id
    assert made.status == "active" and made.connected_at.endswith("Z")
    assert list(msgspec.to_builtins(made)) == [
        "connection_id",
        "wasteland_id",
        "upstream",
        "rig_handle",
        "dolthub_org",
        "connected_at",
        "status",
    ]
    assert get_connection(town) == made
    assert town.execute("SELECT * FROM town_wasteland_connections").fetchall() == [
        (made.connection_id, "w1", "org/commons", "rig-a", "my-org", made.connected_at, "active")
    ]


def test_connect_again_adds_a_row_and_the_oldest_active_one_is_read(town: apsw.Connection) -> None:
    first = _connect(town, "w1")
    second = _connect(town, "w2", "rig-b")
    assert first.connection_id != second.connection_id
    assert get_connection(town) == first
    town.execute(
        "UPDATE town_wasteland_connections SET status = 'disconnecting' WHERE connection_id = ?",
        (first.connection_id,),
    )
    assert get_connection(town) == second


def test_disconnect_deletes_that_wastelands_rows(town: apsw.Connection) -> None:
    _connect(town, "w1")
    _connect(town, "w1", "rig-again")
    second = _connect(town, "w2")
    assert disconnect(town, "w1") is True
    assert get_connection(town) == second
    assert disconnect(town, "w1") is False
    assert disconnect(town, "w2") is True
    assert get_connection(town) is None


def test_connect_rejects_empty_fields(town: apsw.Connection) -> None:
    with pytest.raises(BadRequest, match="rigHandle"):
        _connect(town, "w1", "")
    assert get_connection(town) is None
