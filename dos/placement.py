"""Where each object lives on the Ray backend: a storage node per object, kept with its file.

A storage node is a Ray node that offers the custom resource `gastown-node:<name>` (`ray start
--resources='{"gastown-node:a": 1}'`). The name, not Ray's node id, is what is recorded: a
node that restarts gets a new id but keeps its name and its disk.

A new object goes to the rendezvous-hash winner of its id over the storage nodes alive at that
moment (adding a node moves no existing object, and spreads new ones evenly). The choice is
recorded in `placement.sqlite3` (one row per object, with whether its file was written), owned
by one `PlacementDirectory` actor, so an object whose actor died, retired or whose node
restarted comes back on the node that holds its file. The directory also answers `exists` and
`ids_on_disk` for the whole cluster, which no single node can.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import apsw

NODE_RESOURCE_PREFIX = "gastown-node:"
_HEAD_RESOURCE = "node:__internal_head__"


def rendezvous(key: str, nodes: Iterable[str]) -> str:
    """The node with the highest hash of (node, key): stable under adding/removing others."""
    candidates = sorted(nodes)
    if not candidates:
        raise ValueError("no storage nodes")
    return max(candidates, key=lambda node: hashlib.sha256(f"{node}\0{key}".encode()).digest())


def storage_nodes(nodes: list[dict[str, object]]) -> dict[str, str]:
    """Alive storage nodes, name -> Ray node id, from `ray.nodes()`."""
    out: dict[str, str] = {}
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources") or {}
        assert isinstance(resources, dict)
        for key in resources:
            if key.startswith(NODE_RESOURCE_PREFIX):
                out[key[len(NODE_RESOURCE_PREFIX) :]] = str(node["NodeID"])
    return out


def head_storage_node(nodes: list[dict[str, object]]) -> str | None:
    """The storage name of the (alive) head node, if it is a storage node."""
    for node in nodes:
        resources = node.get("Resources") or {}
        assert isinstance(resources, dict)
        if node.get("Alive") and _HEAD_RESOURCE in resources:
            names = [k[len(NODE_RESOURCE_PREFIX) :] for k in resources if k.startswith(NODE_RESOURCE_PREFIX)]
            return min(names) if names else None
    return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS placement (
    class TEXT NOT NULL,
    object_id TEXT NOT NULL,
    node TEXT NOT NULL,
    written INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (class, object_id)
) WITHOUT ROWID;
"""


class PlacementStore:
    """The placement table in one SQLite file (its owner, the directory actor, is the only writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = apsw.Connection(str(path))
        self.conn.setbusytimeout(5000)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")  # a lost row would strand a file
        self.conn.execute(_SCHEMA)

    def node_of(self, cls: str, object_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT node FROM placement WHERE class = ? AND object_id = ?", (cls, object_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def place(self, cls: str, object_id: str, alive: list[str]) -> str:
        """The object's node: the recorded one, else the hash winner among `alive` (recorded)."""
        with self.conn:
            known = self.node_of(cls, object_id)
            node = known if known is not None else rendezvous(f"{cls}/{object_id}", alive)
            if known is None:
                self.conn.execute("INSERT INTO placement (class, object_id, node) VALUES (?, ?, ?)", (cls, object_id, node))
        return node

    def set_written(self, cls: str, object_id: str, node: str, written: bool) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO placement (class, object_id, node, written) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (class, object_id) DO UPDATE SET node = excluded.node, written = excluded.written",
                (cls, object_id, node, int(written)),
            )

    def written(self, cls: str, object_id: str) -> bool:
        row = self.conn.execute(
            "SELECT written FROM placement WHERE class = ? AND object_id = ?", (cls, object_id)
        ).fetchone()
        return row is not None and bool(row[0])

    def written_ids(self, cls: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT object_id FROM placement WHERE class = ? AND written = 1 ORDER BY object_id", (cls,)
        )
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self.conn.close()
