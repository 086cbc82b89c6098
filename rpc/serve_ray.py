"""`python -m rpc.serve_ray` (what `scripts/serve --ray` starts): the same Starlette app as a
Ray Serve deployment of `GASTOWN_SERVE_REPLICAS` replicas (default 2) behind Serve's HTTP proxy
on HOST:PORT. Each replica is stateless above dos/: it runs the app with the Ray object
runtime (GASTOWN_RUNTIME=ray), so every replica reaches the same objects, wherever they live.

With RAY_ADDRESS the replicas join that cluster; without it a local Ray instance is started
whose one node is the storage node `local` (objects under <GASTOWN_DATA_DIR>/local/).

The replicas get the service's configuration (GASTOWN_*, NEXTAUTH_SECRET, ...) as deployment
arguments, applied to their environment before the app reads its settings. Each response
says which replica answered (`x-gastown-replica`), for operators and the tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any, Final

from dos.backend import ray_namespace
from dos.placement import NODE_RESOURCE_PREFIX

REPLICAS_ENV: Final = "GASTOWN_SERVE_REPLICAS"
REPLICA_HEADER: Final = b"x-gastown-replica"
APP_NAME: Final = "gastown"
LOCAL_NODE: Final = "local"
# Passed on to the replicas: the service's own settings, and the host names/ports it prints.
_PASSED: Final = ("GASTOWN_", "NEXTAUTH_SECRET", "HOST", "PORT", "RAY_ADDRESS")


def replica_env(environ: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k.startswith(_PASSED)}
    env["GASTOWN_RUNTIME"] = "ray"  # a replica with its own local objects would split the data
    return env


class ReplicaHeader:
    """ASGI wrapper: adds the replica's id to each HTTP response."""

    def __init__(self, app: Any, replica_id: str) -> None:
        self.app = app
        self.replica_id = replica_id.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REPLICA_HEADER, self.replica_id)]}
            await send(message)

        await self.app(scope, receive, tagged)


class GastownReplica:
    def __init__(self, env: dict[str, str]) -> None:
        os.environ.update(env)

    def __serve_build_asgi_app__(self) -> Any:
        from ray import serve

        from rpc.app import create_app
        from rpc.request_log import quiet_client_errors
        from rpc.settings import load_settings

        quiet_client_errors()
        replica = serve.get_replica_context().replica_id.unique_id
        return ReplicaHeader(create_app(load_settings()), replica)


def main() -> None:
    import ray
    from ray import serve

    from rpc.settings import load_settings

    settings = load_settings()
    replicas = int(os.environ.get(REPLICAS_ENV, "2"))
    if replicas < 1:
        sys.exit(f"{REPLICAS_ENV} must be >= 1")
    namespace = ray_namespace()
    if os.environ.get("RAY_ADDRESS"):
        ray.init(namespace=namespace, logging_level=logging.WARNING, log_to_driver=False)
    else:  # a local Ray instance whose one node is a storage node
        ray.init(
            namespace=namespace,
            resources={f"{NODE_RESOURCE_PREFIX}{LOCAL_NODE}": 1000},
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    serve.start(http_options={"host": settings.host, "port": settings.port})
    deployment = serve.deployment(
        serve.ingress()(GastownReplica),
        name="Gastown",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 0},
        graceful_shutdown_timeout_s=settings.graceful_stop_ms / 1000,
    )
    # (serve.deployment called on a class returns a Deployment; the stubs pick another overload.)
    serve.run(deployment.bind(replica_env(dict(os.environ))), name=APP_NAME, route_prefix="/")  # type: ignore[attr-defined]
    print(
        f"gastown-fork on Ray Serve: {replicas} replica(s) at http://{settings.host}:{settings.port} "
        f"(objects under {settings.data_dir}/<node>/)",
        flush=True,
    )
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(wait())
    serve.delete(APP_NAME)
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
