#!/usr/bin/env python3
"""Move one object (a town, a user, ...) to another storage node of a Ray deployment.

The deployment is named as the servers name it: RAY_ADDRESS (the cluster), GASTOWN_DATA_DIR
(the storage root on every node) and GASTOWN_RAY_NAMESPACE (default gastown). While the file
is copied the object answers SERVICE_UNAVAILABLE; afterwards it serves from its new node.
How it moves: dos/ray_move.py.

example:
  RAY_ADDRESS=head:6379 GASTOWN_DATA_DIR=/var/lib/gastown .venv/bin/python scripts/move_object.py TownDO <town id> b
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python scripts/move_object.py` without an install
    sys.path.insert(0, str(ROOT))

from dos.container_do import TownContainerDO  # noqa: E402
from dos.lineage_do import TownLineageDO  # noqa: E402
from dos.owner_do import GastownOrgDO, GastownUserDO  # noqa: E402
from dos.town_do import TownDO  # noqa: E402
from town.errors import DomainError  # noqa: E402

CLASSES = {c.__name__: c for c in (TownDO, TownContainerDO, TownLineageDO, GastownUserDO, GastownOrgDO)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("object_class", choices=sorted(CLASSES))
    parser.add_argument("object_id")
    parser.add_argument("to", help="the storage node's name (its gastown-node:<name> resource)")
    args = parser.parse_args(argv)
    if not os.environ.get("RAY_ADDRESS"):
        parser.error("set RAY_ADDRESS to the deployment's cluster")
    import ray

    from dos.backend import ray_namespace
    from dos.ray_move import move_object
    from dos.ray_runtime import RayRuntime

    namespace = ray_namespace()
    ray.init(namespace=namespace, logging_level=logging.ERROR, log_to_driver=False)
    runtime = RayRuntime(Path(os.environ.get("GASTOWN_DATA_DIR", "data")), ray_namespace=namespace, idle_seconds=120)
    try:
        was = asyncio.run(move_object(runtime, CLASSES[args.object_class], args.object_id, args.to))
    except DomainError as exc:
        print(f"move_object: {exc.message}", file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    if was == args.to:
        print(f"{args.object_class} {args.object_id} is already on {args.to}")
    else:
        print(f"moved {args.object_class} {args.object_id} from {was} to {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
