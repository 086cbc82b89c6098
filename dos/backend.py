"""Which object runtime backs the service: `GASTOWN_RUNTIME=local` (the default: every object in
this process, dos/runtime.py) or `ray` (every object an actor on a Ray cluster,
dos/ray_runtime.py; `RAY_ADDRESS` names the cluster). Nothing above dos/ knows which one runs."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Final

from dos.runtime import ObjectRuntime

RUNTIME_ENV: Final = "GASTOWN_RUNTIME"
RAY_NAMESPACE_ENV: Final = "GASTOWN_RAY_NAMESPACE"
IDLE_ENV: Final = "GASTOWN_RAY_IDLE_SECONDS"
DIRECTORY_NODE_ENV: Final = "GASTOWN_RAY_DIRECTORY_NODE"
BACKENDS: Final = ("local", "ray")


def backend_name() -> str:
    name = os.environ.get(RUNTIME_ENV, "local").strip().lower() or "local"
    if name not in BACKENDS:
        raise ValueError(f"{RUNTIME_ENV} must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def ray_namespace() -> str:
    """The deployment's Ray namespace: every server, replica and script of it uses the same."""
    return os.environ.get(RAY_NAMESPACE_ENV, "gastown")


def open_runtime(data_dir: Path) -> Any:
    """The runtime the environment asks for (an `ObjectRuntime`, or its Ray counterpart)."""
    if backend_name() == "local":
        return ObjectRuntime(data_dir)
    import ray

    from dos.ray_runtime import RayRuntime

    namespace = ray_namespace()
    if not ray.is_initialized():  # a Ray Serve replica is already connected
        # RAY_ADDRESS (read by ray.init) names the cluster; without it Ray starts a local one.
        ray.init(namespace=namespace, logging_level=logging.WARNING, log_to_driver=False)
    idle = float(os.environ.get(IDLE_ENV, "120"))
    return RayRuntime(
        data_dir, ray_namespace=namespace, idle_seconds=idle, directory_node=os.environ.get(DIRECTORY_NODE_ENV) or None
    )
