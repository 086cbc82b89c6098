"""Run a producer iterator on its own thread, a few items ahead of its consumer.

A fork's export (reading the source's snapshot) and import (writing the new town) are both
SQLite work, and APSW releases the GIL while SQLite runs, so the two overlap on two cores.
The queue is bounded, so memory stays at a few parts whatever the town's size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure(Generic[T]):
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield what `items` yields, produced on a helper thread at most `depth` items ahead.

    The producer's exception is re-raised here; if the consumer stops early (or fails), the
    producer is told to stop and is joined before this generator finishes, so nothing keeps
    using the producer's resources (e.g. a database connection) afterwards.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(exc))
        finally:
            # Finish the producer here, on its own thread (a generator closes its cursors).
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="fork-export", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
