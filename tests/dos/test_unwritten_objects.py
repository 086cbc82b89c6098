"""No object without a write (dos/runtime.py): an instance gets a file at its first write only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dos.kv import KV_DDL, kv_get, kv_put
from dos.runtime import DurableObject, ObjectRuntime, memoized_read


class Box(DurableObject):
    MIGRATIONS = (KV_DDL, "CREATE TABLE IF NOT EXISTS log (n INTEGER)")

    @memoized_read
    def read(self, key: str) -> object:
        return kv_get(self.conn, key)

    def count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM log").fetchone()
        return int(row[0]) if row else 0

    def put(self, key: str, value: int) -> None:
        kv_put(self.conn, key, value)

    def put_then_fail(self, key: str) -> None:
        kv_put(self.conn, key, 1)
        raise ValueError("boom")

    def delete_nothing(self) -> None:
        self.conn.execute("DELETE FROM log WHERE n = -1")

    def add_index(self) -> None:
        self.conn.execute("CREATE INDEX IF NOT EXISTS log_n ON log (n)")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_reads_failed_writes_and_no_op_writes_leave_no_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Box)
        box = ns.get("b1")
        assert await box.call(Box.read, "k") is None
        assert await box.call(Box.count) == 0
        await box.call(Box.delete_nothing)
        with pytest.raises(ValueError, match="boom"):
            await box.call(Box.put_then_fail, "k")
        assert await box.call(Box.read, "k") is None
        assert not ns.exists("b1")
        assert _files(tmp_path) == []
        await runtime.close()

    asyncio.run(scenario())


def test_the_first_write_creates_the_file_with_what_it_wrote(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Box)
        box = ns.get("b1")
        assert await box.call(Box.read, "k") is None  # memoized while unwritten
        await box.call(Box.put, "k", 7)
        assert ns.exists("b1")
        assert await box.call(Box.read, "k") == 7
        await box.call(Box.put, "k", 8)
        schema_only = ns.get("b2")
        await schema_only.call(Box.add_index)  # DDL counts as a write too
        assert ns.exists("b2")
        await runtime.close()
        assert not any(name.endswith(".new") for name in _files(tmp_path))
        again = ObjectRuntime(tmp_path)
        assert await again.namespace(Box).get("b1").call(Box.read, "k") == 8
        await again.close()

    asyncio.run(scenario())


def test_destroying_an_unwritten_object_forgets_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Box)
        await ns.get("b1").call(Box.count)
        await ns.get("b1").destroy()
        assert not ns.exists("b1") and _files(tmp_path) == []
        await runtime.close()

    asyncio.run(scenario())


def _synchronous(box: Box) -> int:
    row = box.conn.execute("PRAGMA synchronous").fetchone()
    return int(row[0]) if row else -1


def test_written_objects_commit_with_synchronous_full_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # FULL (2): the WAL is fsynced at every commit, so an answered write survives a power loss.
    monkeypatch.delenv("GASTOWN_SQLITE_SYNCHRONOUS", raising=False)

    async def scenario(object_id: str) -> int:
        runtime = ObjectRuntime(tmp_path)
        box = runtime.namespace(Box).get(object_id)
        await box.call(Box.put, "k", 1)
        try:
            return await box.call(_synchronous)
        finally:
            await runtime.close()

    assert asyncio.run(scenario("full")) == 2
    monkeypatch.setenv("GASTOWN_SQLITE_SYNCHRONOUS", "normal")
    assert asyncio.run(scenario("normal")) == 1


def test_an_interrupted_first_write_leaves_nothing_after_startup(tmp_path: Path) -> None:
    (tmp_path / "Box").mkdir()
    for name in ("b1.sqlite3.new", "b1.sqlite3.new-journal"):
        (tmp_path / "Box" / name).write_bytes(b"half")
    runtime = ObjectRuntime(tmp_path)
    assert [p.name for p in runtime.remove_partial_writes()] == ["b1.sqlite3.new", "b1.sqlite3.new-journal"]
    assert _files(tmp_path) == []
