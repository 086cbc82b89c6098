"""The Ray backend of the object runtime: the `ObjectRuntime` / `Namespace` API over actors.

Every object is an `ObjectActor` (dos/ray_actor.py) on the storage node the placement
directory gives it (dos/placement.py); a namespace forwards each method to the actor and turns
Ray's failures into the domain's: an error raised by the call is re-raised as itself, and an
actor that is gone or whose node is down is `Unavailable` (SERVICE_UNAVAILABLE). A call is
retried on a new actor only when Ray says the old one exited on purpose (idle retirement),
because then the call never ran; after a crash it may have committed, so it is not repeated.

Handles are cached per process; the directory is asked only when an actor has to be started.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from dos.placement import head_storage_node, storage_nodes
from dos.ray_actor import DIRECTORY_NAME, ObjectActor, PlacementDirectory, class_path
from dos.runtime import DurableObject, Stub, encode_object_id
from town.errors import Unavailable

log = logging.getLogger("gastown.ray")

T = TypeVar("T", bound=DurableObject)
R = TypeVar("R")

DIRECTORY_FILE = "placement.sqlite3"
ORPHAN_GRACE_ENV = "GASTOWN_RAY_ORPHAN_GRACE_SECONDS"
# How long a call waits for the directory (a down directory node must not hang requests).
DIRECTORY_TIMEOUT = 10.0


def _never_ran(exc: RayActorError) -> bool:
    """Ray's words for an actor that exited on purpose (retire): calls queued behind it never ran."""
    # Ray 2.x: "Worker exit type: INTENDED_USER_EXIT ... exit_actor() is called." (a crash says
    # SYSTEM_ERROR, ray.kill "killed by `ray.kill`").
    return "INTENDED_USER_EXIT" in str(exc)


def _unwrap(exc: RayTaskError) -> BaseException:
    cause = exc.cause
    return cause if isinstance(cause, BaseException) else exc


class RayRuntime:
    """What `ObjectRuntime` offers the layers above, over a Ray cluster."""

    streams_forks = True  # dos/fork_transfer.py: the fork streams between actors
    shared_by_replicas = True  # dos/fork.py: other server processes use the same objects

    def __init__(
        self, storage_root: Path, *, ray_namespace: str, idle_seconds: float, directory_node: str | None = None
    ) -> None:
        self.data_dir = storage_root  # each node keeps its objects under <root>/<node name>/
        self.ray_namespace = ray_namespace
        self.idle_seconds = idle_seconds
        # dos/lifecycle.py: an unpublished town is taken for a crashed fork's only once nobody
        # touched it for this long (another replica's fork in progress looks the same).
        self.orphan_grace_seconds = float(os.environ.get(ORPHAN_GRACE_ENV, "600"))
        self._directory_node = directory_node
        self._directory: Any = None
        self._namespaces: dict[type[Any], RayNamespace[Any]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ray-rt")
        self._background: set[asyncio.Task[None]] = set()

    # -- the directory ------------------------------------------------------------------------
    def node_dir(self, node: str) -> Path:
        return self.data_dir / node

    def directory(self) -> Any:
        if self._directory is None:
            nodes = ray.nodes()
            node = self._directory_node or head_storage_node(nodes)
            alive = storage_nodes(nodes)
            if node is None or node not in alive:
                raise Unavailable("The placement directory's storage node is not available")
            self._directory = PlacementDirectory.options(  # type: ignore[attr-defined]
                name=DIRECTORY_NAME,
                namespace=self.ray_namespace,
                lifetime="detached",
                get_if_exists=True,
                max_restarts=-1,
                max_concurrency=1,
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(alive[node], soft=False),
            ).remote(str(self.node_dir(node) / DIRECTORY_FILE))
        return self._directory

    def ask_directory(self, method: str, *args: Any) -> Any:
        """A blocking directory call (for the sync `exists` and `ids_on_disk`)."""
        try:
            return ray.get(getattr(self.directory(), method).remote(*args), timeout=DIRECTORY_TIMEOUT)
        except (RayActorError, GetTimeoutError) as exc:
            self._directory = None
            raise Unavailable("The placement directory is not available") from exc

    async def ask_directory_async(self, method: str, *args: Any) -> Any:
        try:
            return await asyncio.wait_for(getattr(self.directory(), method).remote(*args), DIRECTORY_TIMEOUT)
        except (RayActorError, TimeoutError) as exc:
            self._directory = None
            raise Unavailable("The placement directory is not available") from exc

    # -- ObjectRuntime's API ------------------------------------------------------------------
    def namespace(self, cls: type[T]) -> RayNamespace[T]:
        ns = self._namespaces.get(cls)
        if ns is None:
            ns = RayNamespace(self, cls)
            self._namespaces[cls] = ns
        return ns

    def remove_partial_writes(self) -> list[Path]:
        # Each actor removes its own object's scratch files when it starts (only it writes
        # them); sweeping here could delete another replica's fork in progress.
        return []

    async def run_in_pool(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    run_in_bulk_pool = run_in_pool

    def start_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def open_count(self) -> int:
        return sum(len(ns._handles) for ns in self._namespaces.values())

    async def close(self) -> None:
        """Stop housekeeping; the actors live on (detached) and retire when idle."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._pool.shutdown(wait=True)


class RayNamespace(Generic[T]):
    """All objects of one class, each an actor named `<Class>/<id>`."""

    def __init__(self, runtime: RayRuntime, cls: type[T]) -> None:
        self._runtime = runtime
        self.cls = cls
        self.class_path = class_path(cls)
        self._handles: dict[str, Any] = {}

    def actor_name(self, object_id: str) -> str:
        return f"{self.cls.__name__}/{object_id}"

    def forget(self, object_id: str) -> None:
        """Drop the cached handle of the object's actor (it is gone, or moved)."""
        self._handles.pop(object_id, None)

    def get(self, object_id: str) -> Stub[T]:
        encode_object_id(object_id)  # validates
        return Stub(self, object_id)  # type: ignore[arg-type]

    async def handle(self, object_id: str) -> Any:
        """The object's actor: cached, else the live one by name, else a new one on its node."""
        known = self._handles.get(object_id)
        if known is not None:
            return known
        name = self.actor_name(object_id)
        try:
            handle = ray.get_actor(name, namespace=self._runtime.ray_namespace)
        except ValueError:  # no such actor (never started, retired, or its node died)
            node, node_id = await self._runtime.ask_directory_async("place", self.cls.__name__, object_id)
            if node_id is None:
                raise Unavailable(
                    f"{self.cls.__name__} {object_id} is on storage node {node or '?'}, which is not available; retry later"
                ) from None
            handle = ObjectActor.options(  # type: ignore[attr-defined]
                name=name,
                namespace=self._runtime.ray_namespace,
                lifetime="detached",
                get_if_exists=True,
                max_concurrency=1,
                max_restarts=-1,  # a crashed actor comes back by itself, on the same node
                max_task_retries=0,  # a call cut off by a crash may have committed: not repeated
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(
                self.class_path,
                object_id,
                str(self._runtime.node_dir(node)),
                node,
                self._runtime.idle_seconds,
                self._runtime.ray_namespace,
            )
        self._handles[object_id] = handle
        return handle

    async def invoke(self, object_id: str, method: str, *args: Any) -> Any:
        """Call an actor method, with the failure mapping of the module docstring."""
        for attempt in range(3):
            handle = await self.handle(object_id)
            try:
                return await getattr(handle, method).remote(*args)
            except RayTaskError as exc:
                cause = _unwrap(exc)
                if isinstance(cause, RayActorError):  # another actor it called (a fork's source) is gone
                    raise Unavailable(f"{self.cls.__name__} {object_id}: an object it needed is not available; retry") from None
                raise cause from None
            except RayActorError as exc:
                self.forget(object_id)
                log.warning("%s %s: %s: %s", self.cls.__name__, object_id, type(exc).__name__, str(exc)[:400])
                if attempt < 2 and (_never_ran(exc) or await self._retired(object_id)):
                    continue
                raise Unavailable(f"{self.cls.__name__} {object_id} is not available right now; retry") from exc
            except RayError as exc:  # e.g. ActorUnschedulableError: its node is gone
                self.forget(object_id)
                log.warning("%s %s: %s: %s", self.cls.__name__, object_id, type(exc).__name__, str(exc)[:400])
                raise Unavailable(f"{self.cls.__name__} {object_id} is not available right now; retry") from exc
        raise AssertionError("unreachable")

    async def _retired(self, object_id: str) -> bool:
        """Whether the object's actor is gone by name (within a second): it then exited on
        purpose, which it does only idle and after every call sent before (`retire`, a finished
        move), so a call that failed on it never ran. A crashed actor comes back under its name:
        a call cut off by a crash is not repeated. (Ray's error does not always say which, when
        the call raced the exit.)"""
        deadline = asyncio.get_running_loop().time() + 1.0
        while True:
            try:
                ray.get_actor(self.actor_name(object_id), namespace=self._runtime.ray_namespace)
            except ValueError:
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def call(self, object_id: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await self.invoke(object_id, "call", fn, args, kwargs, False)  # type: ignore[no-any-return]

    async def call_bulk(self, object_id: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await self.invoke(object_id, "call", fn, args, kwargs, True)  # type: ignore[no-any-return]

    async def create(self, object_id: str, build: Callable[[T], R]) -> R:
        encode_object_id(object_id)
        return await self.invoke(object_id, "create", build)  # type: ignore[no-any-return]

    async def destroy(self, object_id: str) -> None:
        if object_id not in self._handles and not self.exists(object_id):
            return  # never written: nothing to delete, and no actor started just for this
        await self.invoke(object_id, "destroy")

    def exists(self, object_id: str) -> bool:
        return bool(self._runtime.ask_directory("written", self.cls.__name__, object_id))

    def ids_on_disk(self) -> list[str]:
        return list(self._runtime.ask_directory("written_ids", self.cls.__name__))

    async def evict(self, object_id: str) -> bool:
        if object_id not in self._handles:
            return True
        return bool(await self.invoke(object_id, "evict"))

    async def quiet_seconds(self, object_id: str) -> float:
        """Seconds since the object's file last changed (dos/lifecycle.py's orphan sweep)."""
        return float(await self.invoke(object_id, "quiet_seconds"))

    async def where(self, object_id: str) -> tuple[str, Path]:
        """(storage node, file path on that node) of the object."""
        node, path = await self.invoke(object_id, "where")
        return node, Path(path)

    def path_for(self, object_id: str) -> Path:
        raise NotImplementedError("on the Ray backend an object's file is on its node: use `where`")

    def remove_files(self, object_id: str) -> None:
        raise NotImplementedError("on the Ray backend files are removed by the object's actor (`destroy`)")

    async def close(self) -> None:
        self._handles.clear()
