"""Durable-Object-style runtime: one APSW database per object instance, one call at a time.

A `Namespace` per class hands out `Stub`s by instance id. `await stub.call(fn, *args)` runs
`fn(instance, *args)` in a worker thread inside one transaction (`with conn:`), so SQL and KV
writes made by a call commit together or not at all. Calls on one instance are serialized
(an asyncio lock queues them without holding threads; a thread lock makes the guarantee hold
even if an awaiting caller is cancelled while its work still runs). Different instances run
in parallel, bounded by the shared thread pool.

Methods marked `@memoized_read` (short reads whose result depends only on the instance's own
database, e.g. an owner object's town row) are answered from the instance's memory when the
same call was answered before and no other call has run on the instance since: no thread hop,
no SQL. Every write to an object's database goes through a call on that object, and every call
that is not a memoized read bumps the instance's generation inside the thread lock, right after
its transaction ends; an answer is remembered with the generation it was computed at and used
only while that is still current. So a hit is the answer the call would have given had it run
at that moment (a write still running is not acknowledged yet: answering as before it is a
valid order). Memoized results are shared between callers: they must be immutable (frozen
Structs, tuples, None).

No object without a write (as with Durable Objects): an instance whose file does not exist is
opened on an in-memory database with its migrations applied, so reads, denied calls and
probes of unknown ids answer "empty" and leave nothing on disk. The first call that changes
that database (rows or schema; checked after its transaction committed, still under the
instance's thread lock, so no other call can observe the in-between state) writes its
serialized image to `<file>.new`, fsyncs it, renames it into place, fsyncs the directory and
switches the instance to the file: a file appears complete or not at all, and the call
answers only after that. If that fails the call fails and the in-memory state is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import glob
import logging
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Protocol, TypeVar, runtime_checkable

import apsw

from dos.migrations import Migration, apply_migrations
from town.errors import NotFound

log = logging.getLogger("gastown.dos")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T", bound="DurableObject")
T_contra = TypeVar("T_contra", bound="DurableObject", contravariant=True)
R_co = TypeVar("R_co", covariant=True)


@runtime_checkable
class FileBuild(Protocol[T_contra, R_co]):
    """A `Namespace.create` build that brings its object's first database file itself (a fork's
    new town: the rows file its export sent), instead of starting from the class's empty one."""

    def write_file(self, scratch: Path) -> None:
        """Write the whole first content of the object's file at `scratch` (it does not exist)."""
        ...

    def __call__(self, obj: T_contra) -> R_co: ...


_SAFE_ID_CHAR = re.compile(r"[A-Za-z0-9._-]")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]+")
# Memoized answers kept per open instance (LRU); instances themselves are bounded (max_open).
MEMO_ENTRIES = 256
_MISS: Any = object()


def memoized_read(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark an object method as a memoizable read (see the module docstring)."""
    fn.__memoized_read__ = True  # type: ignore[attr-defined]
    return fn


class DurableObject:
    """Base of the object classes: owns `conn`, knows its id; subclasses declare MIGRATIONS."""

    MIGRATIONS: ClassVar[Sequence[Migration]] = ()

    def __init__(self, conn: apsw.Connection, object_id: str) -> None:
        self.conn = conn
        self.id = object_id


def encode_object_id(object_id: str) -> str:
    """File-name form of an id: characters outside [A-Za-z0-9._-] percent-encoded (UTF-8)."""
    if not object_id:
        raise ValueError("object id must not be empty")
    if _SAFE_ID.fullmatch(object_id):  # the common case: uuids and plain user ids
        return object_id
    out: list[str] = []
    for ch in object_id:
        if _SAFE_ID_CHAR.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


# Durability of a commit (README "Durability"): FULL makes SQLite fsync the WAL at every
# commit, so a call that answered survives a power loss, not only a crash of this process.
# NORMAL (fsync only at checkpoints) is for benchmarks and throwaway data.
SYNCHRONOUS_ENV = "GASTOWN_SQLITE_SYNCHRONOUS"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")


def synchronous_mode() -> str:
    mode = os.environ.get(SYNCHRONOUS_ENV, "FULL").upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"{SYNCHRONOUS_ENV} must be one of {', '.join(SYNCHRONOUS_MODES)}, not {mode!r}")
    return mode


def open_database(path: Path) -> apsw.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path))
    conn.setbusytimeout(5000)
    conn.execute("PRAGMA journal_mode = WAL")
    # The mode is one of SYNCHRONOUS_MODES (a PRAGMA takes no bound parameters).
    conn.execute(f"PRAGMA synchronous = {synchronous_mode()}")
    return conn


@functools.cache
def _empty_image(migrations: tuple[Migration, ...]) -> bytes:
    """A new database of a class, migrated and empty, serialized once per process: every new
    object's database starts as a copy of it instead of running the migrations again."""
    conn = apsw.Connection(":memory:")
    try:
        apply_migrations(conn, migrations)
        image = conn.serialize("main")
    finally:
        conn.close()
    assert image is not None  # a migrated database has pages
    return image


def open_unwritten(migrations: Sequence[Migration]) -> apsw.Connection:
    """The database of an object that has no file yet: in memory, migrated, empty."""
    conn = apsw.Connection(":memory:")
    conn.deserialize("main", _empty_image(tuple(migrations)))  # (a private, growable copy)
    return conn


def _change_mark(conn: apsw.Connection) -> tuple[int, int]:
    """Changes so far: rows written by this connection, and the schema cookie (DDL)."""
    row = conn.execute("PRAGMA schema_version").fetchone()
    assert row is not None
    return conn.total_changes(), int(row[0])


def _fsync_path(path: str | Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_out(conn: apsw.Connection, path: Path) -> None:
    """Write an in-memory database to `path` atomically and durably (never half a file)."""
    image = conn.serialize("main")
    assert image is not None  # a migrated database has pages
    write_whole(path, [image])


class _EarlySync:
    """An fsync of a file, started now on a thread of its own (it waits for the disk, not the
    CPU). Only a head start: durability still comes from the fsync after the file's last write."""

    def __init__(self, path: Path) -> None:
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="early-fsync", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            _fsync_path(path)
        except OSError as exc:
            self._error = exc

    def join(self, *, check: bool = True) -> None:
        self._thread.join()
        if check and self._error is not None:
            raise self._error


def write_whole(path: Path, chunks: Iterable[bytes]) -> int:
    """Write a new object file from `chunks` atomically and durably: `<file>.new`, fsync,
    rename, directory fsync (never half a file; a failure leaves nothing). Returns its size."""
    tmp = _fresh_scratch(path)
    size = 0
    try:
        with open(tmp, "xb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_scratch(path)
        raise
    _fsync_path(path.parent, directory=True)
    return size


# An object's file is made under this name beside it and renamed into place when complete;
# SQLite may leave these companions of it (startup's remove_partial_writes removes them all).
_SCRATCH_FILES = ("", "-journal", "-wal", "-shm")


def file_quiet_seconds(path: Path) -> float:
    """Seconds since a database file (or its WAL) last changed; 0 if there is none."""
    stamps = [p.stat().st_mtime for p in (path, Path(f"{path}-wal")) if p.exists()]
    return time.time() - max(stamps) if stamps else 0.0


def _scratch_path(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def remove_scratch(path: Path, *, exports: bool = False) -> None:
    """Remove what an unfinished write or creation of `path` left beside it, and with `exports`
    what an unfinished export of it left too (that lists the directory: not for hot paths)."""
    scratch = _scratch_path(path)
    for suffix in _SCRATCH_FILES:
        Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    if exports:
        for leftover in path.parent.glob(f"{glob.escape(scratch.name)}.export-*"):
            leftover.unlink(missing_ok=True)


def export_scratch(path: Path) -> Path:
    """A private file beside the object's file for an export of it (a fork's rows file): named
    as its scratch files are, so what a crash leaves is swept with them."""
    return path.with_name(f"{_scratch_path(path).name}.export-{secrets.token_hex(8)}")


def _fresh_scratch(path: Path) -> Path:
    """The scratch path for `path`, cleared of what a crash during an earlier attempt left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_scratch(path)
    return _scratch_path(path)


def open_snapshot_reader(path: Path) -> apsw.Connection:
    """A reading connection to an object's database (a WAL reader: never blocks its writer).

    Used for consistent exports while the owning object keeps taking writes; the caller pins
    the snapshot by holding one transaction open around its reads. It is opened read-write
    (never create) only so that files it attaches are writable (a fork export writes its rows
    file); it never writes the object's own database.
    """
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    conn.setbusytimeout(5000)
    return conn


def _memo_key(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if not getattr(fn, "__memoized_read__", False):
        return None
    key = (fn, *args)
    try:
        hash(key)
    except TypeError:  # an unhashable argument: such a call is simply not memoized
        return None
    return key


class _Instance(Generic[T]):
    def __init__(self, obj: T, persisted: bool) -> None:
        self.obj = obj
        self.persisted = persisted  # False: never written, in memory only (no file)
        self.queue = asyncio.Lock()
        self.thread_lock = threading.Lock()
        self.closed = False  # connection closed: evicted (reopens on next use) or destroyed
        self.destroyed = False
        # Bumped (under thread_lock) by every call that is not a memoized read, after it ran.
        self.generation = 0
        # (method, *args) -> (generation, answer) of memoized reads; touched on the loop only.
        self.memo: OrderedDict[tuple[Any, ...], tuple[int, Any]] = OrderedDict()

    def remembered(self, key: tuple[Any, ...]) -> Any:
        entry = self.memo.get(key)
        if entry is None or entry[0] != self.generation or self.closed or self.destroyed:
            return _MISS
        self.memo.move_to_end(key)
        return entry[1]

    def remember(self, key: tuple[Any, ...], generation: int, value: Any) -> None:
        self.memo[key] = (generation, value)
        self.memo.move_to_end(key)
        if len(self.memo) > MEMO_ENTRIES:
            self.memo.popitem(last=False)


class Namespace(Generic[T]):
    """All instances of one object class, stored under `<data_dir>/<ClassName>/`."""

    def __init__(self, runtime: ObjectRuntime, cls: type[T]) -> None:
        self._runtime = runtime
        self.cls = cls
        self.directory = runtime.data_dir / cls.__name__
        self._instances: dict[str, _Instance[T]] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def path_for(self, object_id: str) -> Path:
        return self.directory / f"{encode_object_id(object_id)}.sqlite3"

    async def quiet_seconds(self, object_id: str) -> float:
        """Seconds since the object's file (or its WAL) last changed; 0 if it has none."""
        return file_quiet_seconds(self.path_for(object_id))

    def exists(self, object_id: str) -> bool:
        """True if the instance has a database file (was ever written)."""
        inst = self._instances.get(object_id)
        if inst is not None:
            return inst.persisted
        return self.path_for(object_id).exists()

    def get(self, object_id: str) -> Stub[T]:
        encode_object_id(object_id)  # validates
        return Stub(self, object_id)

    def ids_on_disk(self) -> list[str]:
        from urllib.parse import unquote

        if not self.directory.exists():
            return []
        return sorted(unquote(p.name[: -len(".sqlite3")]) for p in self.directory.glob("*.sqlite3"))

    async def _instance(self, object_id: str) -> _Instance[T]:
        inst = self._instances.get(object_id)
        if inst is not None:
            self._runtime.touch(self, object_id)
            return inst
        opening = self._opening.setdefault(object_id, asyncio.Lock())
        async with opening:
            inst = self._instances.get(object_id)
            if inst is None:
                obj, persisted = await self._runtime.run_in_pool(self._open, object_id)
                inst = _Instance(obj, persisted)
                self._instances[object_id] = inst
        self._opening.pop(object_id, None)
        self._runtime.touch(self, object_id)
        await self._runtime.evict_idle()
        return inst

    async def evict(self, object_id: str) -> bool:
        """Close an idle instance's database (it reopens on next use); False if busy."""
        inst = self._instances.get(object_id)
        if inst is None:
            return True
        if inst.queue.locked():
            return False
        async with inst.queue:
            await self._runtime.run_in_pool(self._close_instance, inst)
            self._instances.pop(object_id, None)
        return True

    def _open(self, object_id: str) -> tuple[T, bool]:
        path = self.path_for(object_id)
        if not path.exists():
            return self.cls(open_unwritten(self.cls.MIGRATIONS), object_id), False
        conn = open_database(path)
        try:
            apply_migrations(conn, self.cls.MIGRATIONS)
        except BaseException:
            conn.close()
            raise
        return self.cls(conn, object_id), True

    def _persist(self, inst: _Instance[T]) -> None:
        """First write of a never-written instance: its memory database becomes its file.
        Runs under the instance's thread lock, right after the call's transaction."""
        memory = inst.obj.conn
        try:
            path = self.path_for(inst.obj.id)
            write_out(memory, path)
            conn = open_database(path)
        except BaseException:
            # Not on disk, so not acknowledged: forget what the call wrote in memory.
            inst.obj = self.cls(open_unwritten(self.cls.MIGRATIONS), inst.obj.id)
            memory.close()
            raise
        inst.obj = self.cls(conn, inst.obj.id)
        inst.persisted = True
        memory.close()

    async def call(
        self, object_id: str, fn: Callable[Concatenate[T, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return await self._call(object_id, False, fn, *args, **kwargs)

    async def create(self, object_id: str, build: Callable[[T], R] | FileBuild[T, R]) -> R:
        """Create a new object's database whole, for loads too big for one call's transaction
        (a fork's import): `build(obj)` fills a private scratch file, `<file>.new`, with no
        journal and no sync (nothing can see it, and a failure or a crash only discards it;
        startup removes leftovers); then it is fsynced and renamed into place, so the object's
        file appears complete or not at all, and the object opens it on its next call. The
        scratch file starts as the class's empty database, or as what a `FileBuild` writes.
        The object must have no file yet. Runs in the bulk pool."""
        encode_object_id(object_id)
        opening = self._opening.setdefault(object_id, asyncio.Lock())
        async with opening:  # nobody opens the object while its file is being made
            if object_id in self._instances and not await self.evict(object_id):
                raise RuntimeError(f"{self.cls.__name__} {object_id} is busy")
            if self.path_for(object_id).exists():
                raise RuntimeError(f"{self.cls.__name__} {object_id} already has a database")
            future = self._runtime.submit(lambda: self._build_file(object_id, build), bulk=True)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                await asyncio.wait([future])  # the file is finished or removed before we go
                raise
            finally:
                self._opening.pop(object_id, None)

    def _build_file(self, object_id: str, build: Callable[[T], R] | FileBuild[T, R]) -> R:
        path = self.path_for(object_id)
        scratch = _fresh_scratch(path)
        conn: apsw.Connection | None = None
        early_sync: _EarlySync | None = None
        try:
            if isinstance(build, FileBuild):
                build.write_file(scratch)  # its own first content
                # Most of the file is written now: its pages go to disk while the build goes
                # on, so the fsync below waits only for what the build adds.
                early_sync = _EarlySync(scratch)
            else:
                scratch.write_bytes(_empty_image(tuple(self.cls.MIGRATIONS)))  # (synced below)
            conn = apsw.Connection(str(scratch))
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            result = build(self.cls(conn, object_id))
            conn.close()
            if early_sync is not None:
                early_sync.join()
            _fsync_path(scratch)
            os.replace(scratch, path)
        except BaseException:
            if conn is not None:
                conn.close()
            if early_sync is not None:
                early_sync.join(check=False)
            remove_scratch(path)
            raise
        _fsync_path(path.parent, directory=True)
        return result

    async def call_bulk(
        self, object_id: str, fn: Callable[Concatenate[T, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Like `call`, for long work (a fork import): runs in the small bulk pool, so a few
        big jobs never take every worker from the short calls of other objects."""
        return await self._call(object_id, True, fn, *args, **kwargs)

    async def _call(
        self, object_id: str, bulk: bool, fn: Callable[Concatenate[T, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        memo_key = _memo_key(fn, args) if not kwargs and not bulk else None
        if memo_key is not None:
            known = self._instances.get(object_id)
            if known is not None:
                value = known.remembered(memo_key)
                if value is not _MISS:
                    self._runtime.touch(self, object_id)
                    return value  # type: ignore[no-any-return]
        inst = await self._instance(object_id)
        async with inst.queue:
            if inst.destroyed:
                # Deleted while this call waited: do not resurrect an empty database.
                raise NotFound(f"{self.cls.__name__} {object_id} no longer exists")
            if inst.closed:  # evicted while this call waited: reopen
                return await self._call(object_id, bulk, fn, *args, **kwargs)

            def work() -> tuple[int, R]:
                with inst.thread_lock:
                    generation = inst.generation
                    try:
                        if inst.persisted:
                            with inst.obj.conn:
                                result = fn(inst.obj, *args, **kwargs)
                        else:
                            before = _change_mark(inst.obj.conn)
                            with inst.obj.conn:
                                result = fn(inst.obj, *args, **kwargs)
                            if _change_mark(inst.obj.conn) != before:
                                self._persist(inst)
                    finally:
                        if memo_key is None:  # this call may have written
                            inst.generation = generation + 1
                return generation, result

            future = self._runtime.submit(work, bulk=bulk)
            try:
                generation, result = await asyncio.shield(future)
            except asyncio.CancelledError:
                # Keep the queue held until the work is really done, so the next call never
                # overlaps it; the caller still sees its cancellation.
                await asyncio.wait([future])
                raise
            if memo_key is not None:
                inst.remember(memo_key, generation, result)
            return result

    async def destroy(self, object_id: str) -> None:
        """Close the instance and delete its database file and WAL/SHM companions."""
        known = object_id in self._instances or self.exists(object_id)
        inst = await self._instance(object_id) if known else None
        if inst is not None:
            async with inst.queue:
                inst.destroyed = True
                await self._runtime.run_in_pool(self._close_instance, inst)
                self._instances.pop(object_id, None)
                self._runtime.forget(self, object_id)
        self.remove_files(object_id)

    def remove_files(self, object_id: str) -> None:
        base = self.path_for(object_id)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
        remove_scratch(base, exports=True)

    @staticmethod
    def _close_instance(inst: _Instance[Any]) -> None:
        with inst.thread_lock:
            if not inst.closed:
                inst.closed = True
                inst.obj.conn.close()

    async def close(self) -> None:
        for object_id, inst in list(self._instances.items()):
            async with inst.queue:
                await self._runtime.run_in_pool(self._close_instance, inst)
            self._instances.pop(object_id, None)
            self._runtime.forget(self, object_id)


class Stub(Generic[T]):
    """Handle on one instance; the database is opened on the first call, and its file is
    created by the first call that writes (see the module docstring)."""

    def __init__(self, namespace: Namespace[T], object_id: str) -> None:
        self.namespace = namespace
        self.id = object_id

    async def call(
        self, fn: Callable[Concatenate[T, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return await self.namespace.call(self.id, fn, *args, **kwargs)

    async def call_bulk(
        self, fn: Callable[Concatenate[T, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return await self.namespace.call_bulk(self.id, fn, *args, **kwargs)

    def exists(self) -> bool:
        return self.namespace.exists(self.id)

    async def destroy(self) -> None:
        await self.namespace.destroy(self.id)


class ObjectRuntime:
    def __init__(
        self, data_dir: Path, *, max_workers: int = 8, bulk_workers: int = 2, max_open: int = 256
    ) -> None:
        self.data_dir = data_dir
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="do")
        self._bulk_pool = ThreadPoolExecutor(max_workers=bulk_workers, thread_name_prefix="do-bulk")
        self._namespaces: dict[type[Any], Namespace[Any]] = {}
        # Open databases, least recently used first: idle ones beyond `max_open` are closed
        # so thousands of towns do not exhaust file descriptors.
        self.max_open = max_open
        self._recent: OrderedDict[tuple[Namespace[Any], str], None] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    def touch(self, ns: Namespace[Any], object_id: str) -> None:
        self._recent[(ns, object_id)] = None
        self._recent.move_to_end((ns, object_id))

    def forget(self, ns: Namespace[Any], object_id: str) -> None:
        self._recent.pop((ns, object_id), None)

    def open_count(self) -> int:
        return len(self._recent)

    async def evict_idle(self) -> None:
        if len(self._recent) <= self.max_open:
            return
        for ns, object_id in list(self._recent):
            if len(self._recent) <= self.max_open:
                break
            if await ns.evict(object_id):
                self.forget(ns, object_id)

    def remove_partial_writes(self) -> list[Path]:
        """Delete `<file>.new` (and its `-journal`) left by a crash while an object's first
        write was being written out (that write was never acknowledged). Startup only, before
        any call runs."""
        removed = sorted(self.data_dir.glob("*/*.sqlite3.new*"))  # and its -journal
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    def namespace(self, cls: type[T]) -> Namespace[T]:
        ns = self._namespaces.get(cls)
        if ns is None:
            ns = Namespace(self, cls)
            self._namespaces[cls] = ns
        return ns

    def submit(self, fn: Callable[[], R], *, bulk: bool = False) -> asyncio.Future[R]:
        pool = self._bulk_pool if bulk else self._pool
        return asyncio.get_running_loop().run_in_executor(pool, fn)

    async def run_in_bulk_pool(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.submit(lambda: fn(*args, **kwargs), bulk=True)

    async def run_in_pool(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.submit(lambda: fn(*args, **kwargs))

    def start_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run housekeeping (e.g. the retention sweep) until `close`, which cancels it first."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Stop housekeeping, wait for in-flight calls, close every database, stop the pool."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for ns in list(self._namespaces.values()):
            await ns.close()
        self._pool.shutdown(wait=True)
        self._bulk_pool.shutdown(wait=True)
