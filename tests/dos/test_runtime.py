"""The object runtime (storage.md): one database per instance, serialized calls, transactions."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import ClassVar

import apsw
import pytest

from dos.kv import KV_DDL, kv_get, kv_put
from dos.migrations import apply_migrations
from dos.runtime import DurableObject, ObjectRuntime


class Sleeper(DurableObject):
    MIGRATIONS = (KV_DDL, "CREATE TABLE IF NOT EXISTS log (n INTEGER)")
    active: ClassVar[dict[str, int]] = {}
    max_active: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def nap(self, seconds: float) -> float:
        with Sleeper.lock:
            Sleeper.active[self.id] = Sleeper.active.get(self.id, 0) + 1
            Sleeper.max_active[self.id] = max(Sleeper.max_active.get(self.id, 0), Sleeper.active[self.id])
        started = time.monotonic()
        time.sleep(seconds)
        with Sleeper.lock:
            Sleeper.active[self.id] -= 1
        return started

    barrier = threading.Barrier(2, timeout=5)

    def meet(self) -> bool:
        """Returns only when another call is inside `meet` at the same time (or fails after 5 s)."""
        Sleeper.barrier.wait()
        return True

    def write_then_fail(self, n: int) -> None:
        self.conn.execute("INSERT INTO log (n) VALUES (?)", (n,))
        kv_put(self.conn, "last", n)
        raise ValueError("boom")

    def write(self, n: int) -> None:
        self.conn.execute("INSERT INTO log (n) VALUES (?)", (n,))
        kv_put(self.conn, "last", n)

    def state(self) -> tuple[list[int], object]:
        return [r[0] for r in self.conn.execute("SELECT n FROM log ORDER BY n")], kv_get(self.conn, "last")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_calls_on_different_instances_run_in_parallel_and_on_one_instance_serialized(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[bool], int]:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Sleeper)
        # Two instances: both calls must be inside `meet` at once, or the barrier breaks.
        met = await asyncio.gather(ns.get("a").call(Sleeper.meet), ns.get("b").call(Sleeper.meet))
        # One instance: four slow calls, never two at a time.
        await asyncio.gather(*(ns.get("c").call(Sleeper.nap, 0.05) for _ in range(4)))
        await runtime.close()
        return list(met), Sleeper.max_active["c"]

    met, max_active_c = run(scenario())
    assert met == [True, True]
    assert max_active_c == 1


def test_two_calls_on_one_instance_never_meet(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Sleeper).get("solo")
        Sleeper.barrier.reset()
        try:
            await asyncio.gather(stub.call(Sleeper.meet), stub.call(Sleeper.meet))
        finally:
            await runtime.close()

    Sleeper.barrier = threading.Barrier(2, timeout=0.5)
    try:
        with pytest.raises(threading.BrokenBarrierError):
            run(scenario())
    finally:
        Sleeper.barrier = threading.Barrier(2, timeout=5)


def test_a_failed_call_rolls_back_sql_and_kv_together(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], object]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Sleeper).get("x")
        await stub.call(Sleeper.write, 1)
        with pytest.raises(ValueError):
            await stub.call(Sleeper.write_then_fail, 2)
        state = await stub.call(Sleeper.state)
        await runtime.close()
        return state

    assert run(scenario()) == ([1], 1)


def test_database_layout_wal_and_migrations(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        await runtime.namespace(Sleeper).get("user@example.com").call(Sleeper.write, 5)
        await runtime.close()

    run(scenario())
    path = tmp_path / "Sleeper" / "user%40example.com.sqlite3"
    conn = apsw.Connection(str(path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT value FROM _kv WHERE key = 'last'").fetchone()[0] == "5"


def test_destroy_removes_the_files_and_the_next_call_starts_fresh(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], object]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Sleeper).get("gone")
        await stub.call(Sleeper.write, 1)
        await stub.destroy()
        assert not list((tmp_path / "Sleeper").glob("gone*"))
        assert not stub.exists()
        state = await stub.call(Sleeper.state)
        await runtime.close()
        return state

    assert run(scenario()) == ([], None)


def test_a_cancelled_caller_does_not_let_the_next_call_overlap(tmp_path: Path) -> None:
    async def scenario() -> int:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Sleeper).get("cancel")
        await stub.call(Sleeper.state)
        slow = asyncio.ensure_future(stub.call(Sleeper.nap, 0.3))
        await asyncio.sleep(0.05)
        slow.cancel()
        await stub.call(Sleeper.nap, 0.01)
        await runtime.close()
        return Sleeper.max_active["cancel"]

    assert run(scenario()) == 1


def test_idle_databases_beyond_the_limit_are_closed_and_reopen_on_use(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, list[object]]:
        runtime = ObjectRuntime(tmp_path, max_open=3)
        ns = runtime.namespace(Sleeper)
        for i in range(10):
            await ns.get(f"o{i}").call(Sleeper.write, i)
        open_now = runtime.open_count()
        states = [await ns.get(f"o{i}").call(Sleeper.state) for i in range(10)]
        await runtime.close()
        return open_now, [s[1] for s in states]

    open_now, lasts = run(scenario())
    assert open_now <= 3
    assert lasts == list(range(10))


def test_a_call_queued_behind_destroy_does_not_resurrect_the_object(tmp_path: Path) -> None:
    from town.errors import NotFound

    async def scenario() -> tuple[bool, bool]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Sleeper).get("doomed")
        await stub.call(Sleeper.write, 1)
        slow = asyncio.ensure_future(stub.call(Sleeper.nap, 0.1))
        await asyncio.sleep(0.01)
        destroy = asyncio.ensure_future(stub.destroy())
        await asyncio.sleep(0.01)
        late = asyncio.ensure_future(stub.call(Sleeper.write, 2))
        await asyncio.gather(slow, destroy)
        with pytest.raises(NotFound):
            await late
        exists = stub.exists()
        await runtime.close()
        return exists, (tmp_path / "Sleeper" / "doomed.sqlite3").exists()

    assert run(scenario()) == (False, False)


def test_long_bulk_calls_leave_the_normal_workers_free(tmp_path: Path) -> None:
    async def scenario() -> bool:
        runtime = ObjectRuntime(tmp_path, max_workers=1, bulk_workers=1)
        ns = runtime.namespace(Sleeper)
        await asyncio.gather(ns.get("big").call(Sleeper.state), ns.get("small").call(Sleeper.state))
        big = asyncio.ensure_future(ns.get("big").call_bulk(Sleeper.nap, 0.5))
        await asyncio.sleep(0.05)
        # With the only normal worker free, a short call elsewhere finishes while the bulk one runs.
        await asyncio.wait_for(ns.get("small").call(Sleeper.write, 1), 0.4)
        still_running = not big.done()
        await big
        await runtime.close()
        return still_running

    assert run(scenario())


# -- an object's database created whole (Namespace.create, the fork's import) ------------------


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_create_builds_the_file_whole_and_the_object_then_reads_it(tmp_path: Path) -> None:
    seen_during_build: list[list[str]] = []

    def build(obj: Sleeper) -> int:
        assert not obj.conn.in_transaction  # the build is not one call's transaction
        for n in range(3):
            obj.write(n)
        seen_during_build.append(_files(tmp_path / "Sleeper"))
        return 7

    async def scenario() -> tuple[int, tuple[list[int], object], str]:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Sleeper)
        result = await ns.create("made", build)
        state = await ns.get("made").call(Sleeper.state)
        path = ns.path_for("made")
        await runtime.close()
        return result, state, str(path)

    result, state, path = run(scenario())
    assert result == 7 and state == ([0, 1, 2], 2)
    # While it was built only the scratch file existed; after, only the object's own file.
    assert seen_during_build == [["made.sqlite3.new"]]
    assert _files(tmp_path / "Sleeper") == ["made.sqlite3"]
    conn = apsw.Connection(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # opened as every object
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def _assert_failed_create_leaves_nothing(
    tmp_path: Path, object_id: str, build: object, error: type[Exception], match: str
) -> None:
    """`create` with `build` raises `error`; no file is left and the id reads as new."""

    async def scenario() -> tuple[list[int], object]:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Sleeper)
        with pytest.raises(error, match=match):
            await ns.create(object_id, build)  # type: ignore[arg-type]
        assert not ns.exists(object_id)
        state = await ns.get(object_id).call(Sleeper.state)
        await runtime.close()
        return state

    assert run(scenario()) == ([], None)
    assert _files(tmp_path / "Sleeper") == []


def test_a_failed_create_leaves_nothing_and_the_id_reads_as_new(tmp_path: Path) -> None:
    def build(obj: Sleeper) -> None:
        obj.write(1)
        raise ValueError("half-way")

    _assert_failed_create_leaves_nothing(tmp_path, "broken", build, ValueError, "half-way")


class BringsItsFile:
    """A FileBuild: the object's first file is a database it brings (as a fork's rows file)."""

    def __init__(self, image: bytes, *, fail_after: int | None = None) -> None:
        self.image, self.fail_after = image, fail_after
        self.wrote: Path | None = None

    def write_file(self, scratch: Path) -> None:
        self.wrote = scratch
        with open(scratch, "xb") as out:
            out.write(self.image[: self.fail_after])
            if self.fail_after is not None:
                raise ConnectionError("the stream broke off")

    def __call__(self, obj: Sleeper) -> list[int]:
        obj.write(9)  # over what the file brought
        return obj.state()[0]


def _image_with_writes(values: list[int]) -> bytes:
    conn = apsw.Connection(":memory:")
    apply_migrations(conn, Sleeper.MIGRATIONS)
    conn.executemany("INSERT INTO log (n) VALUES (?)", [(v,) for v in values])
    image = conn.serialize("main")
    conn.close()
    assert image is not None
    return image


def test_a_file_build_starts_from_the_file_it_brings(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], tuple[list[int], object]]:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Sleeper)
        build = BringsItsFile(_image_with_writes([3, 4]))
        during = await ns.create("brought", build)
        assert build.wrote is not None and build.wrote.name == "brought.sqlite3.new"
        state = await ns.get("brought").call(Sleeper.state)
        await runtime.close()
        return during, state

    during, (values, _) = run(scenario())
    assert during == [3, 4, 9] and values == [3, 4, 9]
    assert _files(tmp_path / "Sleeper") == ["brought.sqlite3"]


def test_a_file_build_whose_file_breaks_off_leaves_nothing(tmp_path: Path) -> None:
    build = BringsItsFile(_image_with_writes([1]), fail_after=4096)
    _assert_failed_create_leaves_nothing(tmp_path, "cut", build, ConnectionError, "broke off")


def test_create_refuses_an_object_that_already_has_a_database(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Sleeper)
        await ns.get("taken").call(Sleeper.write, 5)
        with pytest.raises(RuntimeError, match="already has a database"):
            await ns.create("taken", lambda obj: obj.write(6))
        assert await ns.get("taken").call(Sleeper.state) == ([5], 5)
        await runtime.close()

    run(scenario())
