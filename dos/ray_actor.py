"""The Ray actors of the Ray backend: one `ObjectActor` per object, one `PlacementDirectory`.

An `ObjectActor` is one Durable Object: named `<Class>/<id>`, detached, pinned to the storage
node that holds its file, `max_concurrency=1` in its default group. It hosts a local
`ObjectRuntime` over the node's data dir for that ONE object, so migrations, `_kv`, one
transaction per call, first-write-creates-the-file, `create` and `destroy` are the local
backend's own code. Calls run one at a time on the actor's thread, driving the runtime's
coroutine on a private event loop.

Exports run in a separate concurrency group ("export"): they read a WAL snapshot through their
own connection (`open_snapshot_reader`), never the object's, so a fork can stream the source
while the source keeps taking its serialized calls, exactly as the local backend does.

An actor that served nothing for `idle_seconds` (and exports nothing) retires: a `retire` call
queued behind any pending call closes the database and exits the actor; Ray then frees its
name, and the next call starts a new one on the same node (the directory says which).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray

from dos.placement import PlacementStore, storage_nodes
from dos.runtime import (
    DurableObject,
    ObjectRuntime,
    file_quiet_seconds,
    open_database,
    remove_scratch,
    write_whole,
)
from dos.town_do import exported_parts, fork_counts
from town import fork_export, fork_import
from town.errors import Unavailable
from town.fork_payload import ExportPart

log = logging.getLogger("gastown.ray")

DIRECTORY_NAME = "gastown/placement"
EXPORT_GROUP = "export"
MOVE_CHUNK_BYTES = 1 << 20


def class_path(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def load_class(path: str) -> type[DurableObject]:
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, DurableObject)
    return cls


@ray.remote(concurrency_groups={EXPORT_GROUP: 2})  # type: ignore[call-overload]  # (Ray's stubs lack the option)
class ObjectActor:
    def __init__(
        self,
        cls_path: str,
        object_id: str,
        node_dir: str,
        node: str,
        idle_seconds: float,
        ray_namespace: str,
        *,
        mover: bool = False,
    ) -> None:
        self.cls = load_class(cls_path)
        self.id = object_id
        self.node = node
        self.ray_namespace = ray_namespace
        self.loop = asyncio.new_event_loop()
        # Small pools: this runtime serves one object, whose calls are serialized anyway.
        self.runtime = ObjectRuntime(Path(node_dir), max_workers=1, bulk_workers=1, max_open=1)
        self.ns = self.runtime.namespace(self.cls)
        # Only this actor ever writes this object's file (Ray keeps one actor per name), so a
        # scratch file beside it is what a crash mid-create, mid-first-write or mid-export left:
        # remove it.
        remove_scratch(self.ns.path_for(object_id), exports=True)
        self._reported: bool | None = None
        # A mover (dos/ray_move.py) only receives the object's file on its new node: it must
        # not tell the directory anything about the object.
        self._mover = mover
        self._frozen = False  # being moved away: calls answer SERVICE_UNAVAILABLE
        if not mover:
            self._report()
        self._idle_seconds = idle_seconds
        self._last_used = time.monotonic()
        self._exports = 0
        self._retiring = False
        if idle_seconds > 0:
            threading.Thread(target=self._watch_idle, name="idle", daemon=True).start()

    # -- calls (default group: one at a time) --------------------------------------------------
    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], bulk: bool) -> Any:
        self._check_not_frozen()
        self._last_used = time.monotonic()
        try:
            run = self.ns.call_bulk if bulk else self.ns.call
            return self.loop.run_until_complete(run(self.id, fn, *args, **kwargs))
        finally:
            self._report()
            self._last_used = time.monotonic()

    def create(self, build: Callable[[Any], Any]) -> Any:
        """`Namespace.create` here, on this node: `build` (picklable) fills the new file."""
        self._check_not_frozen()
        self._last_used = time.monotonic()
        try:
            return self.loop.run_until_complete(self.ns.create(self.id, build))
        finally:
            self._report()
            self._last_used = time.monotonic()

    def destroy(self) -> None:
        self._check_not_frozen()
        try:
            self.loop.run_until_complete(self.ns.destroy(self.id))
        finally:
            self._report()

    def evict(self) -> bool:
        return self.loop.run_until_complete(self.ns.evict(self.id))

    def quiet_seconds(self) -> float:
        """Seconds since this object's file (or its WAL) last changed; 0 if it has none."""
        return file_quiet_seconds(self.ns.path_for(self.id))

    def where(self) -> tuple[str, str]:
        """(storage node, file path): for tests and operators."""
        return self.node, str(self.ns.path_for(self.id))

    def pid(self) -> int:
        return os.getpid()

    def retire(self) -> bool:
        """Exit if still idle (queued behind every call sent before it; calls sent after it
        fail without having run, and the caller retries them on a new actor)."""
        if self._frozen:  # a move in progress ends this actor itself
            self._retiring = False
            return False
        if time.monotonic() - self._last_used < self._idle_seconds or self._exports:
            self._retiring = False
            return False
        self.loop.run_until_complete(self.runtime.close())
        ray.actor.exit_actor()
        return True  # not reached

    # -- moving to another node (dos/ray_move.py) --------------------------------------------
    def _check_not_frozen(self) -> None:
        if self._frozen:
            raise Unavailable(f"{self.cls.__name__} {self.id} is being moved to another node; retry")

    def freeze(self) -> None:
        """Stop serving (queued behind every call before it) and close the database, which
        checkpoints its WAL: the file alone is then the whole object, and stays as it is."""
        self._frozen = True
        self.loop.run_until_complete(self.ns.evict(self.id))
        # A WAL left by an earlier process of this actor may still hold committed pages.
        conn = open_database(self.ns.path_for(self.id))
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def thaw(self) -> None:
        self._frozen = False

    @ray.method(concurrency_group=EXPORT_GROUP)
    def file_chunks(self) -> Iterator[bytes]:
        """The frozen object's file, in chunks (a Ray streaming generator)."""
        if not self._frozen:
            raise RuntimeError("only a frozen object's file is streamed")
        with open(self.ns.path_for(self.id), "rb") as file:
            while chunk := file.read(MOVE_CHUNK_BYTES):
                yield chunk

    def receive_file(self, source: Any) -> int:
        """(On the new node.) Write the source's streamed file whole: scratch, fsync, rename."""
        path = self.ns.path_for(self.id)
        if path.exists():
            raise RuntimeError(f"{path} already exists on {self.node}")
        stream = source.file_chunks.options(num_returns="streaming", _generator_backpressure_num_objects=4).remote()
        return write_whole(path, (ray.get(ref) for ref in stream))

    def discard_file(self) -> None:
        """(On the new node.) Undo `receive_file` of a move that failed."""
        self.ns.remove_files(self.id)

    def finish_move(self) -> None:
        """(On the old node, after the directory names the new one.) Remove the file, exit."""
        self.ns.remove_files(self.id)
        self.loop.run_until_complete(self.runtime.close())
        ray.actor.exit_actor()

    # -- exports (their own group: they never touch the object's connection) -------------------
    @ray.method(concurrency_group=EXPORT_GROUP)
    def export_parts(self, options: fork_export.ExportOptions) -> Iterator[ExportPart]:
        """The fork export of this town, part by part (a Ray streaming generator): one read
        transaction, so the parts are one consistent snapshot."""
        self._exports += 1
        try:
            yield from exported_parts(self.ns.path_for(self.id), options)
        finally:
            self._exports -= 1
            self._last_used = time.monotonic()

    @ray.method(concurrency_group=EXPORT_GROUP)
    def fork_counts(self, options: fork_export.ExportOptions) -> fork_import.ImportReport:
        """What a fork would copy (dryRun), read here beside the file."""
        self._exports += 1
        try:
            return fork_counts(self.ns.path_for(self.id), options)
        finally:
            self._exports -= 1
            self._last_used = time.monotonic()

    # -- housekeeping -------------------------------------------------------------------------
    def _report(self) -> None:
        """Tell the directory when this object's file came into being or went away."""
        if self._mover or self._frozen:  # a move updates the directory itself
            return
        written = self.ns.exists(self.id)
        if written == self._reported:
            return
        try:
            directory = ray.get_actor(DIRECTORY_NAME, namespace=self.ray_namespace)
            ray.get(directory.set_written.remote(self.cls.__name__, self.id, self.node, written))
            self._reported = written
        except Exception:  # retried after the next call, and when the actor restarts
            log.warning("could not record %s/%s in the placement directory", self.cls.__name__, self.id, exc_info=True)

    def _watch_idle(self) -> None:
        me = ray.get_runtime_context().current_actor
        while True:
            time.sleep(max(self._idle_seconds / 4, 0.2))
            idle = time.monotonic() - self._last_used >= self._idle_seconds and not self._exports
            if idle and not self._retiring:
                self._retiring = True
                me.retire.remote()


@ray.remote
class PlacementDirectory:
    """The placement table's one owner (dos/placement.py), pinned to the directory node."""

    def __init__(self, path: str) -> None:
        self.store = PlacementStore(Path(path))

    def place(self, cls: str, object_id: str) -> tuple[str, str | None]:
        """(node name, its Ray node id if alive) for the object; recorded on first use."""
        alive = storage_nodes(ray.nodes())
        known = self.store.node_of(cls, object_id)
        if known is None:
            if not alive:
                return "", None
            known = self.store.place(cls, object_id, sorted(alive))
        return known, alive.get(known)

    def set_written(self, cls: str, object_id: str, node: str, written: bool) -> None:
        self.store.set_written(cls, object_id, node, written)

    def written(self, cls: str, object_id: str) -> bool:
        return self.store.written(cls, object_id)

    def written_ids(self, cls: str) -> list[str]:
        return self.store.written_ids(cls)
