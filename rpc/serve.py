"""`python -m rpc.serve`: run the server in the foreground (what scripts/serve starts)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

import uvicorn

from rpc.app import create_app
from rpc.auth import OrgMembership, mint_token
from rpc.request_log import quiet_client_errors
from rpc.settings import load_settings
from rpc.startup import DEV_ORG_ID, DEV_USER_ID


def main() -> None:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    url = f"http://{settings.host}:{settings.port}"
    print(f"gastown-fork listening on {url} (data in {settings.data_dir})", flush=True)
    if settings.dev_mode:
        # The dev user owns the demo org too, so both demo towns are reachable with one token.
        token = mint_token(settings.secret, DEV_USER_ID, org_memberships=[OrgMembership(orgId=DEV_ORG_ID, role="owner")])
        print("dev mode: NEXTAUTH_SECRET is unset; using the secret in data/dev-secret", flush=True)
        print(f"export TOKEN={token}", flush=True)
        print(f"open the web app, signed in: {url}/#token={token}", flush=True)
        print(f"try: curl -H \"Authorization: Bearer $TOKEN\" '{url}/trpc/gastown.listTowns'", flush=True)
    app = create_app(settings)
    quiet_client_errors()  # survives uvicorn's dictConfig, which only replaces handlers
    # access_log off: uvicorn would log query strings, and SSE carries the token there.
    # uvloop and httptools (dependencies) explicitly: "auto" would fall back silently to the
    # slower asyncio loop and h11 parser if they were missing.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        # (Annotated int, but uvicorn hands it to asyncio.wait_for: fractions of a second work.)
        timeout_graceful_shutdown=settings.graceful_stop_ms / 1000,  # type: ignore[arg-type]
    )
    server = GracefulServer(config, app.state.stopping)
    server.run()
    if not server.started:  # as uvicorn.run: a failed startup is exit status 3
        sys.exit(3)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, which first tells the app that it is stopping (rpc/graceful.py ends
    the event streams then), and then shuts down as usual: no new connections, in-flight
    calls finish (up to timeout_graceful_shutdown), WebSockets get a 1012 close frame."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stopping.set()
        await super().shutdown(sockets)


if __name__ == "__main__":
    main()
