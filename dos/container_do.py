"""TownContainerDO: the container registry/runtime state of one town (KV only for now)."""

from __future__ import annotations

from typing import Any

from dos.kv import kv_get, kv_put
from dos.runtime import DurableObject
from town.schema import CONTAINER_MIGRATIONS


class TownContainerDO(DurableObject):
    MIGRATIONS = CONTAINER_MIGRATIONS

    def get(self, key: str) -> Any | None:
        return kv_get(self.conn, key)

    def put(self, key: str, value: Any) -> None:
        kv_put(self.conn, key, value)
