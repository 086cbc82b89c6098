"""Fork progress while a fork runs: one `Tracker` per (caller, idempotencyKey) in this process.

How a status travels:
- the build runs in a worker thread and reports (phase, rows done, rows total) as each step of
  rows is written (town/fork_import.Progress); `Tracker.from_thread` hands that to the event loop with
  `loop.call_soon_threadsafe`, never waiting for it: while one hand-off is queued, later reports
  join it (one per phase, the newest rows), so the loop is not flooded and no phase is lost;
- ForkService reports its own phases ("rigs", "publish") and the end ("done" | "failed") on the
  loop;
- watchers are given changes at most every PUBLISH_INTERVAL seconds, except phase changes and
  the final status, which go out at once. Each watcher has its own queue in which statuses of
  one phase collapse, so a slow watcher still sees every phase, in order, and the end.

Finished forks are read from their stored record (dos/fork_status.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import msgspec

from dos.fork_status import PHASE_RANK, TERMINAL, ForkError, ForkStatus, not_found, percent_of
from town.clock import now_iso

PUBLISH_INTERVAL: Final = 0.1  # seconds between two same-phase statuses a watcher is given

class Watcher:
    """One watcher's queue of statuses of one tracker, from the moment it was attached."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.queue: deque[ForkStatus] = deque()
        self.wake = asyncio.Event()
        self.last: ForkStatus | None = None

    def push(self, status: ForkStatus) -> None:
        if status is self.last:
            return
        self.last = status
        if self.queue and self.queue[-1].phase == status.phase and status.phase not in TERMINAL:
            self.queue[-1] = status  # not taken yet: the newer status of the same phase replaces it
        else:
            self.queue.append(status)
        self.wake.set()


class Tracker:
    """The live status of one running fork. Everything but `from_thread`'s callback runs on the
    event loop that created it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.latest: ForkStatus | None = None  # the newest status (what a poll reads)
        self.ended = False  # finished, or dropped without a status of its own
        self._published: ForkStatus | None = None  # the newest status watchers were given
        self._published_at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._watchers: list[Watcher] = []
        self._lock = threading.Lock()  # guards the two fields below
        self._pending: list[tuple[str, int, int]] = []
        self._handoff_scheduled = False

    # -- reports ------------------------------------------------------------------------------
    def start(self, town_id: str) -> None:
        self._set(
            ForkStatus(
                idempotencyKey=self.key, phase="export", rowsDone=0, rowsTotal=0, percent=0.0,
                townId=town_id, error=None, updatedAt=now_iso(),
            ),
            urgent=True,
        )

    def report(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        """A non-final phase, with rows (a phase of ForkService's own keeps the rows so far)."""
        current = self.latest
        rank = PHASE_RANK.get(phase)
        if current is None or current.phase in TERMINAL or rank is None or rank < PHASE_RANK[current.phase]:
            return  # not started, already over, not a phase of ours, or late for an earlier phase
        rows_done = current.rowsDone if done is None else max(done, current.rowsDone)
        rows_total = current.rowsTotal if not total else total
        percent = max(current.percent, percent_of(phase, rows_done, rows_total))
        if (phase, rows_done, rows_total, percent) == (current.phase, current.rowsDone, current.rowsTotal, current.percent):
            return
        status = msgspec.structs.replace(
            current, phase=phase, rowsDone=rows_done, rowsTotal=rows_total, percent=percent, updatedAt=now_iso()
        )
        self._set(status, urgent=phase != current.phase)

    def done(self) -> ForkStatus:
        """The final status of a fork that published its town (given out by `finish`)."""
        current = self._require()
        return msgspec.structs.replace(current, phase="done", percent=100.0, error=None, updatedAt=now_iso())

    def failed(self, error: ForkError) -> ForkStatus:
        """The final status of a fork that ended without a town (nothing of it was kept)."""
        current = self._require()
        return msgspec.structs.replace(current, phase="failed", townId=None, error=error, updatedAt=now_iso())

    def finish(self, status: ForkStatus) -> None:
        """Give out the final status (once it is persisted) and end every watcher after it."""
        self._set(status, urgent=True)
        self._end()

    def drop(self) -> None:
        """End without a status of its own (the call never started a fork, e.g. CONFLICT):
        watchers fall back to what is stored."""
        self._end()

    def _require(self) -> ForkStatus:
        if self.latest is None:
            raise RuntimeError("fork status tracker used before start()")
        return self.latest

    # -- from the import thread ---------------------------------------------------------------
    def from_thread(self, phase: str, done: int, total: int) -> None:
        """The import's progress callback (town/fork_import.Progress), called in its thread.

        Reports wait in `_pending` (one per phase, the newest rows) for the one hand-off queued
        on the loop; the lock is only ever held for a few assignments, so the thread never waits
        for the loop."""
        with self._lock:
            if self._pending and self._pending[-1][0] == phase:
                self._pending[-1] = (phase, done, total)
            else:
                self._pending.append((phase, done, total))
            if self._handoff_scheduled:
                return  # the hand-off already queued will carry this report
            self._handoff_scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._take_pending)
        except RuntimeError:  # the loop is closed (shutdown): nobody is left to tell
            pass

    def _take_pending(self) -> None:
        with self._lock:
            reports, self._pending = self._pending, []
            self._handoff_scheduled = False
        for report in reports:
            self.report(*report)

    # -- watchers -----------------------------------------------------------------------------
    def _set(self, status: ForkStatus, *, urgent: bool) -> None:
        self.latest = status
        now = self.loop.time()
        due = self._published_at + PUBLISH_INTERVAL
        if urgent or now >= due:
            self._publish()
        elif self._timer is None:
            self._timer = self.loop.call_at(due, self._publish)

    def _publish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        status = self.latest
        if status is None or status is self._published:
            return
        self._published, self._published_at = status, self.loop.time()
        for watcher in self._watchers:
            watcher.push(status)

    def _end(self) -> None:
        self._publish()
        self.ended = True
        for watcher in self._watchers:
            watcher.wake.set()

    def attach(self) -> Watcher:
        """A watcher given the newest status, then each change (read it with `follow`)."""
        watcher = Watcher(self)
        if self.latest is not None:
            watcher.push(self.latest)
        self._watchers.append(watcher)
        return watcher

    async def follow(self, watcher: Watcher | None = None) -> AsyncIterator[ForkStatus]:
        """What `watcher` (default: one attached now) is given, ending after the final status
        (or when the tracker is dropped)."""
        watcher = watcher or self.attach()
        try:
            while True:
                while watcher.queue:
                    status = watcher.queue.popleft()
                    yield status
                    if status.phase in TERMINAL:
                        return
                if self.ended:
                    return
                watcher.wake.clear()
                await watcher.wake.wait()
        finally:
            self._watchers.remove(watcher)


Flight = tuple[str, str]  # (caller user id, idempotencyKey)
# What is stored for a flight; the flag says whether an attempt with that key runs here now.
StoredStatus = Callable[[bool], Awaitable[ForkStatus | None]]
RECHECK_SECONDS: Final = 1.0  # while waiting for a fork to appear, what is stored is read again this often
# A failed attempt's status is final only if no retry with the key begins within this time: a
# front end retries by calling forkTown and subscribing at the same moment.
RETRY_GRACE_SECONDS: Final = 1.0


class ForkProgress:
    """The trackers of the forks running in this process, by (caller, key)."""

    def __init__(self) -> None:
        self._live: dict[Flight, Tracker] = {}
        self._arrivals: dict[Flight, list[asyncio.Future[Watcher]]] = {}

    def begin(self, flight: Flight) -> Tracker:
        tracker = Tracker(flight[1])
        self._live[flight] = tracker
        # Those waiting for this fork are attached now, so they miss none of its statuses.
        for waiter in self._arrivals.pop(flight, []):
            if not waiter.done():
                waiter.set_result(tracker.attach())
        return tracker

    def end(self, flight: Flight, tracker: Tracker) -> None:
        if self._live.get(flight) is tracker:
            del self._live[flight]
        if not tracker.ended:
            tracker.drop()

    def live(self, flight: Flight) -> Tracker | None:
        return self._live.get(flight)

    async def _arrival(self, flight: Flight, timeout: float) -> Watcher | None:
        """A watcher of the fork with this flight, once one runs (None after `timeout`)."""
        tracker = self._live.get(flight)
        if tracker is not None:
            return tracker.attach()
        if timeout <= 0:
            return None
        waiter: asyncio.Future[Watcher] = asyncio.get_running_loop().create_future()
        waiters = self._arrivals.setdefault(flight, [])
        waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters and self._arrivals.get(flight) is waiters:
                del self._arrivals[flight]

    async def status(self, flight: Flight, stored: StoredStatus) -> ForkStatus:
        tracker = self._live.get(flight)
        if tracker is not None and tracker.latest is not None:
            return tracker.latest
        found = await stored(tracker is not None)
        if found is None:
            raise not_found(flight[1])
        return found

    async def watch(self, flight: Flight, stored: StoredStatus, wait: float) -> AsyncIterator[ForkStatus]:
        """Each status of the fork in order, ending after the final one. A fork that has not
        started yet is waited for up to `wait` seconds (then NotFound); a finished one yields
        its final status only (a failed one after RETRY_GRACE_SECONDS without a retry)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        graced = False
        watcher: Watcher | None = None
        while True:
            tracker = self._live.get(flight)
            if watcher is None and tracker is not None:
                watcher = tracker.attach()
            if watcher is not None:
                async for status in watcher.tracker.follow(watcher):
                    yield status
                    if status.phase in TERMINAL:
                        return
                watcher = None
                # Ended without a final status of its own: what is stored says how it ended.
            found = await stored(flight in self._live)
            if found is not None and found.phase == "failed" and not graced:
                graced = True
                watcher = await self._arrival(flight, min(RETRY_GRACE_SECONDS, max(deadline - loop.time(), 0.0)))
                continue  # a retry began (follow it), or none did: read what is stored again
            if found is not None and found.phase in TERMINAL:
                yield found
                return
            if flight in self._live:
                continue  # an attempt began meanwhile: follow it
            # Woken as soon as a fork with this key begins; what is stored is read again now
            # and then, in case one began and ended while it was being read.
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise not_found(flight[1])
            watcher = await self._arrival(flight, min(remaining, RECHECK_SECONDS))
