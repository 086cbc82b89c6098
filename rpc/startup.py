"""What happens before the server takes requests: sweep half-written towns and expired fork
idempotency records (then periodically), seed the demo."""

from __future__ import annotations

import logging

from dos import lifecycle, retention
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
    await _index_lineage(services)
    await retention.sweep_expired(services.runtime)
    services.runtime.start_background(retention.sweep_periodically(services.runtime))
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


# Present once every fork published before the lineage index existed has been recorded there.
LINEAGE_MARKER = ".lineage-indexed"


async def _index_lineage(services: Services) -> None:
    """Index old forks once, then drop index entries of forks that are not visible."""
    marker = services.settings.data_dir / LINEAGE_MARKER
    if not marker.exists():
        recorded = await lifecycle.index_lineage(services.runtime)
        if recorded:
            log.info("indexed %d existing fork(s) for listForks", recorded)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("1\n")
    dropped = await lifecycle.prune_lineage(services.runtime)
    if dropped:
        log.warning("dropped %d lineage entries of forks that are not visible", dropped)
