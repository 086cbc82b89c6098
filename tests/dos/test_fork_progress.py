"""dos/fork_progress.py: reports from an import thread reach watchers in order, coalesced."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from dos.fork_progress import PUBLISH_INTERVAL, ForkProgress, Tracker
from dos.fork_status import PHASE_RANK, ForkError, ForkStatus

PARTS = 3000


def _import_thread(tracker: Tracker, total: int = PARTS * 10) -> threading.Thread:
    """What town/fork_import does from its worker thread: export once, import per part, then
    indexes and config."""

    def run() -> None:
        tracker.from_thread("export", 0, total)
        for part in range(1, PARTS + 1):
            tracker.from_thread("import", part * 10, total)
            if part % 500 == 0:
                time.sleep(0.02)  # some parts take a while
        tracker.from_thread("indexes", total, total)
        tracker.from_thread("config", total, total)

    return threading.Thread(target=run)


async def _collect(tracker: Tracker, out: list[ForkStatus], delay: float = 0.0) -> None:
    async for status in tracker.follow():
        out.append(status)
        if delay:
            await asyncio.sleep(delay)


async def _fork(tracker: Tracker) -> None:
    tracker.start("town-1")
    worker = _import_thread(tracker)
    worker.start()
    while worker.is_alive():
        await asyncio.sleep(0.005)
    await asyncio.sleep(0)  # the last hand-off runs before the call's result would
    tracker.report("rigs")
    tracker.report("publish")
    tracker.finish(tracker.done())


def _assert_in_order(statuses: list[ForkStatus]) -> None:
    for before, after in itertools.pairwise(statuses):
        assert PHASE_RANK[after.phase] >= PHASE_RANK[before.phase]
        assert after.percent >= before.percent
        assert after.rowsDone >= before.rowsDone


def test_thousands_of_part_reports_reach_watchers_coalesced_in_order_with_every_phase() -> None:
    async def main() -> tuple[list[ForkStatus], list[ForkStatus], float]:
        tracker = Tracker("key")
        fast: list[ForkStatus] = []
        slow: list[ForkStatus] = []
        watchers = [asyncio.create_task(_collect(tracker, fast)), asyncio.create_task(_collect(tracker, slow, 0.2))]
        await asyncio.sleep(0)
        started = time.monotonic()
        await _fork(tracker)
        elapsed = time.monotonic() - started
        await asyncio.wait_for(asyncio.gather(*watchers), 10)
        return fast, slow, elapsed

    fast, slow, elapsed = asyncio.run(main())
    phases = ["export", "import", "indexes", "config", "rigs", "publish", "done"]
    for statuses in (fast, slow):
        _assert_in_order(statuses)
        assert list(dict.fromkeys(s.phase for s in statuses)) == phases
        assert statuses[-1].phase == "done" and statuses[-1].percent == 100
        assert statuses[-1].rowsDone == statuses[-1].rowsTotal == PARTS * 10
    # Bounded: one status per phase change plus at most one per interval, not one per part.
    same_phase = len(fast) - len(phases)
    assert same_phase <= elapsed / PUBLISH_INTERVAL + len(phases), (len(fast), elapsed)
    assert len(fast) < PARTS / 10
    # A slow watcher's queue collapses statuses of one phase: fewer of them, every phase still.
    assert len(slow) <= len(fast)


def test_a_failed_fork_keeps_its_percent_and_drops_its_town_id() -> None:
    async def main() -> list[ForkStatus]:
        tracker = Tracker("key")
        seen: list[ForkStatus] = []
        watcher = asyncio.create_task(_collect(tracker, seen))
        await asyncio.sleep(0)
        tracker.start("town-1")
        tracker.report("import", 50, 100)
        tracker.report("publish")
        tracker.report("import", 60, 100)  # late: never goes back
        tracker.finish(tracker.failed(ForkError("INTERNAL_SERVER_ERROR", "The fork failed")))
        await asyncio.wait_for(watcher, 5)
        return seen

    seen = asyncio.run(main())
    assert [s.phase for s in seen] == ["export", "import", "publish", "failed"]
    assert seen[-1].percent == seen[-2].percent == 98.0
    assert seen[-1].townId is None and seen[-2].townId == "town-1"
    assert seen[-1].error == ForkError("INTERNAL_SERVER_ERROR", "The fork failed")


def test_a_dropped_tracker_ends_its_watchers_and_a_late_report_from_a_closed_loop_is_ignored() -> None:
    holder: list[Tracker] = []

    async def main() -> list[ForkStatus]:
        progress = ForkProgress()
        tracker = progress.begin(("alice", "k"))
        holder.append(tracker)
        seen: list[ForkStatus] = []
        watcher = asyncio.create_task(_collect(tracker, seen))
        await asyncio.sleep(0)
        progress.end(("alice", "k"), tracker)
        await asyncio.wait_for(watcher, 5)
        assert progress.live(("alice", "k")) is None
        return seen

    assert asyncio.run(main()) == []
    holder[0].from_thread("import", 1, 2)  # the loop is closed: nothing to tell, no error


def test_a_watch_waits_for_the_fork_to_begin_and_follows_it() -> None:
    async def main() -> list[ForkStatus]:
        progress = ForkProgress()
        flight = ("alice", "k")

        async def nothing_stored(running: bool) -> ForkStatus | None:
            return None

        async def watch() -> list[ForkStatus]:
            return [s async for s in progress.watch(flight, nothing_stored, 5.0)]

        watching = asyncio.create_task(watch())
        await asyncio.sleep(0.05)
        tracker = progress.begin(flight)
        await _fork(tracker)
        progress.end(flight, tracker)
        return await asyncio.wait_for(watching, 5)

    seen = asyncio.run(main())
    assert seen[0].phase == "export" and seen[-1].phase == "done"
    _assert_in_order(seen)
