"""Memoized reads (dos/runtime.py): answered from memory until another call on the object runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from dos.kv import KV_DDL, kv_get, kv_put
from dos.runtime import MEMO_ENTRIES, DurableObject, ObjectRuntime, memoized_read


class Counter(DurableObject):
    MIGRATIONS = (KV_DDL,)
    # How many times each read really ran its SQL (per instance id).
    reads_run: ClassVar[dict[str, int]] = {}
    gate: ClassVar[threading.Event] = threading.Event()

    @memoized_read
    def value(self, key: str) -> object:
        Counter.reads_run[self.id] = Counter.reads_run.get(self.id, 0) + 1
        return kv_get(self.conn, key)

    @memoized_read
    def fail(self) -> None:
        Counter.reads_run[self.id] = Counter.reads_run.get(self.id, 0) + 1
        raise ValueError("no answer")

    def put(self, key: str, value: object) -> None:
        kv_put(self.conn, key, value)

    def put_when_released(self, key: str, value: object) -> None:
        kv_put(self.conn, key, value)
        assert Counter.gate.wait(5)

    def put_then_fail(self, key: str, value: object) -> None:
        kv_put(self.conn, key, value)
        raise ValueError("rolled back")

    def unrelated(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _reset() -> None:
    Counter.reads_run.clear()
    Counter.gate.clear()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_repeated_memoized_read_is_answered_without_running_again(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        await stub.call(Counter.put, "k", 1)
        answers = [await stub.call(Counter.value, "k") for _ in range(5)]
        await runtime.close()
        return answers

    assert run(scenario()) == [1] * 5
    assert Counter.reads_run["a"] == 1


def test_a_write_through_the_object_is_seen_by_the_next_memoized_read(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        seen = [await stub.call(Counter.value, "k")]
        await stub.call(Counter.put, "k", "first")
        seen.append(await stub.call(Counter.value, "k"))
        await stub.call(Counter.put, "k", "second")
        seen.append(await stub.call(Counter.value, "k"))
        seen.append(await stub.call(Counter.value, "k"))
        await runtime.close()
        return seen

    assert run(scenario()) == [None, "first", "second", "second"]
    assert Counter.reads_run["a"] == 3


def test_any_other_call_on_the_object_forgets_its_memoized_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        await stub.call(Counter.value, "k")
        await stub.call(Counter.unrelated)  # may have written, as far as the runtime knows
        await stub.call(Counter.value, "k")
        await runtime.close()

    run(scenario())
    assert Counter.reads_run["a"] == 2


def test_a_failed_write_still_forgets_memoized_answers(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        await stub.call(Counter.put, "k", 1)
        before = await stub.call(Counter.value, "k")
        with pytest.raises(ValueError):
            await stub.call(Counter.put_then_fail, "k", 2)
        after = await stub.call(Counter.value, "k")
        await runtime.close()
        return [before, after]

    assert run(scenario()) == [1, 1]  # the transaction rolled back; the read ran again
    assert Counter.reads_run["a"] == 2


def test_a_read_during_a_running_write_answers_as_before_it_and_after_it_sees_it(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        await stub.call(Counter.put, "k", "old")
        await stub.call(Counter.value, "k")
        write = asyncio.ensure_future(stub.call(Counter.put_when_released, "k", "new"))
        await asyncio.sleep(0.05)  # the write is running (its transaction is open, not acknowledged)
        during = await stub.call(Counter.value, "k")
        Counter.gate.set()
        await write
        after = await stub.call(Counter.value, "k")
        await runtime.close()
        return [during, after]

    assert run(scenario()) == ["old", "new"]


def test_memoized_answers_are_per_instance_and_per_arguments(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        runtime = ObjectRuntime(tmp_path)
        ns = runtime.namespace(Counter)
        await ns.get("a").call(Counter.put, "k", "a's")
        await ns.get("b").call(Counter.put, "k", "b's")
        answers = [
            await ns.get("a").call(Counter.value, "k"),
            await ns.get("b").call(Counter.value, "k"),
            await ns.get("a").call(Counter.value, "other"),
        ]
        await ns.get("b").call(Counter.put, "k", "b's again")  # forgets b's answers only
        answers += [await ns.get("a").call(Counter.value, "k"), await ns.get("b").call(Counter.value, "k")]
        await runtime.close()
        return answers

    assert run(scenario()) == ["a's", "b's", None, "a's", "b's again"]
    assert Counter.reads_run == {"a": 2, "b": 2}


def test_a_read_that_raises_is_not_memoized(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        for _ in range(2):
            with pytest.raises(ValueError):
                await stub.call(Counter.fail)
        await runtime.close()

    run(scenario())
    assert Counter.reads_run["a"] == 2


def test_memoized_answers_are_bounded_per_instance(tmp_path: Path) -> None:
    async def scenario() -> None:
        runtime = ObjectRuntime(tmp_path)
        stub = runtime.namespace(Counter).get("a")
        for i in range(MEMO_ENTRIES + 1):
            await stub.call(Counter.value, f"k{i}")
        await stub.call(Counter.value, "k0")  # the oldest answer was dropped: runs again
        await stub.call(Counter.value, f"k{MEMO_ENTRIES}")  # the newest is still known
        await runtime.close()

    run(scenario())
    assert Counter.reads_run["a"] == MEMO_ENTRIES + 2


def test_an_evicted_instance_reads_its_database_again(tmp_path: Path) -> None:
    async def scenario() -> object:
        runtime = ObjectRuntime(tmp_path, max_open=1)
        ns = runtime.namespace(Counter)
        await ns.get("a").call(Counter.put, "k", 1)
        await ns.get("a").call(Counter.value, "k")
        await ns.get("b").call(Counter.unrelated)  # closes the idle "a"
        value = await ns.get("a").call(Counter.value, "k")
        await runtime.close()
        return value

    assert run(scenario()) == 1
    assert Counter.reads_run["a"] == 2
