"""What happens before the server takes requests: sweep half-written towns, seed the demo."""

from __future__ import annotations

import logging

from dos import lifecycle
from dos.demo import DEMO_MARKER, seed_demo
from rpc.auth import mint_token
from rpc.services import Services

log = logging.getLogger("gastown.startup")

DEV_USER_ID = "dev-user"
DEV_ORG_ID = "00000000-0000-4000-8000-00000000d0e0"


async def on_startup(services: Services) -> None:
    removed = await lifecycle.sweep_orphans(services.runtime)
    if removed:
        log.warning("removed %d unpublished town(s) left by an interrupted create or fork", len(removed))
    settings = services.settings
    if settings.demo and not (settings.data_dir / DEMO_MARKER).exists():
        secret = settings.secret
        towns = await seed_demo(
            services.runtime, lambda user_id: mint_token(secret, user_id), user_id=DEV_USER_ID, org_id=DEV_ORG_ID
        )
        (settings.data_dir / DEMO_MARKER).write_text("\n".join(towns) + "\n")
        log.info("seeded demo towns %s", ", ".join(towns))
    if settings.dev_mode and (settings.data_dir / DEMO_MARKER).exists():
        personal = (settings.data_dir / DEMO_MARKER).read_text().split()[0]
        base = f"http://{settings.host}:{settings.port}"
        print(f"demo town: {personal}", flush=True)
        print(
            "fork it: curl -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' "
            f"-d '{{\"sourceTownId\":\"{personal}\",\"newTownName\":\"My fork\"}}' {base}/trpc/gastown.forkTown",
            flush=True,
        )
