"""Environment configuration (rpc.md §5), read once at startup."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


class Settings(msgspec.Struct, frozen=True):
    host: str
    port: int
    data_dir: Path
    secret: str
    dev_mode: bool
    demo: bool
    git_token_service_url: str | None
    max_body_bytes: int
    cors_origins: tuple[str, ...]
    log_level: str
    # Test-only: name of a fork step at which the process kills itself (crash tests).
    fault_inject: str | None = None
    # Where the built web app is (default: web/dist of this checkout).
    web_dir: Path | None = None
    # Keep-alive of long-lived streams, with tRPC v11's intervals (trpc-wire.md §4, §5.3): an
    # SSE `event: ping` after this long without an event (0: off); a WebSocket text `PING`
    # after this long without a client message, and the socket closed if none follows.
    sse_ping_ms: int = 1000
    ws_ping_ms: int = 30_000
    ws_pong_wait_ms: int = 5000
    # How long a stop (SIGTERM/SIGINT) waits for calls in flight before cancelling them.
    graceful_stop_ms: int = 10_000

    def __repr__(self) -> str:  # never print the secret
        return f"Settings(host={self.host!r}, port={self.port}, data_dir={str(self.data_dir)!r}, dev_mode={self.dev_mode})"


def dev_secret(data_dir: Path) -> str:
    """The dev-mode secret, created once and kept in `<data_dir>/dev-secret` (mode 0600)."""
    path = data_dir / "dev-secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("GASTOWN_DATA_DIR", "./data")).resolve()
    secret = env.get("NEXTAUTH_SECRET") or None
    dev_mode = secret is None
    if secret is None:
        secret = dev_secret(data_dir)
    demo_default = "1" if dev_mode else "0"
    origins = tuple(o.strip() for o in env.get("GASTOWN_CORS_ORIGINS", "").split(",") if o.strip())
    return Settings(
        host=env.get("HOST", "127.0.0.1"),
        port=int(env.get("PORT", "8787")),
        data_dir=data_dir,
        secret=secret,
        dev_mode=dev_mode,
        demo=env.get("GASTOWN_DEMO", demo_default) == "1",
        git_token_service_url=env.get("GASTOWN_GIT_TOKEN_SERVICE_URL") or None,
        max_body_bytes=int(env.get("GASTOWN_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))),
        cors_origins=origins,
        log_level=env.get("GASTOWN_LOG_LEVEL", "info"),
        fault_inject=env.get("GASTOWN_TEST_FAULT") or None,
        web_dir=Path(env["GASTOWN_WEB_DIR"]).resolve() if env.get("GASTOWN_WEB_DIR") else None,
        sse_ping_ms=int(env.get("GASTOWN_SSE_PING_MS", "1000")),
        ws_ping_ms=int(env.get("GASTOWN_WS_PING_MS", "30000")),
        ws_pong_wait_ms=int(env.get("GASTOWN_WS_PONG_WAIT_MS", "5000")),
        graceful_stop_ms=int(env.get("GASTOWN_GRACEFUL_STOP_MS", "10000")),
    )
