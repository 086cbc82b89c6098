"""Move one object to another storage node (Ray backend; scripts/move_object.py).

The object's file goes over as the fork's rows do: the source actor streams it (a Ray
streaming generator, a few chunks ahead at most) into an actor on the target node, which
writes `<file>.new`, fsyncs it and renames it into place. The fork's own export is not used: it
leaves out what a fork must not copy (secrets, runtime state), and a move must keep everything.

1. the object's actor is frozen: its calls answer SERVICE_UNAVAILABLE until the move ends, and
   its database is closed (WAL checkpointed), so the file is complete and stable;
2. a mover actor on the target node receives the file;
3. the placement directory records the new node: from here on the object is there;
4. the old actor removes its file and exits; the next call starts the object on its new node.
A failure before step 3 thaws the old actor and removes what the target received.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from dos.placement import storage_nodes
from dos.ray_actor import ObjectActor
from town.errors import BadRequest, Unavailable


async def move_object(runtime: Any, cls: type[Any], object_id: str, to: str) -> str:
    """Move the object to storage node `to`; returns the node it was on."""
    ns = runtime.namespace(cls)
    alive = storage_nodes(ray.nodes())
    if to not in alive:
        raise Unavailable(f"storage node {to} is not available")
    if not ns.exists(object_id):
        raise BadRequest(f"{cls.__name__} {object_id} has no file to move")
    source_node, _ = await ns.where(object_id)
    if source_node == to:
        return source_node
    source = await ns.handle(object_id)
    await ns.invoke(object_id, "freeze")
    mover = ObjectActor.options(  # type: ignore[attr-defined]
        name=f"move:{ns.actor_name(object_id)}",
        namespace=runtime.ray_namespace,
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(alive[to], soft=False),
    ).remote(ns.class_path, object_id, str(runtime.node_dir(to)), to, 0, runtime.ray_namespace, mover=True)
    try:
        try:
            await mover.receive_file.remote(source)
            await runtime.ask_directory_async("set_written", cls.__name__, object_id, to, True)
        except BaseException:
            await mover.discard_file.remote()
            await ns.invoke(object_id, "thaw")
            raise
        # Straight to the old actor, not `invoke`: it exits on purpose, and its call must not
        # be re-sent (to the object's new actor, whose file it would remove).
        try:
            await source.finish_move.remote()
        except RayActorError:
            pass  # it exited, as it should
    finally:
        ray.kill(mover)
        ns.forget(object_id)
    return source_node
