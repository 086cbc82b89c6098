"""Start the real server (python -m rpc.serve) on an ephemeral 127.0.0.1 port, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rpc.auth import OrgMembership, mint_token

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    secret: str = TEST_SECRET
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def trpc_url(self) -> str:
        return f"{self.base_url}/trpc"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/trpc"

    def token(
        self,
        user_id: str,
        *,
        orgs: dict[str, str] | None = None,
        is_admin: bool = False,
        gastown_access: bool = True,
    ) -> str:
        memberships = [OrgMembership(orgId=o, role=r) for o, r in (orgs or {}).items()]  # type: ignore[arg-type]
        return mint_token(
            self.secret, user_id, is_admin=is_admin, gastown_access=gastown_access, org_memberships=memberships
        )

    def dev_token(self) -> str:
        """The dev user of the demo data, owner of the demo org."""
        from rpc.startup import DEV_ORG_ID, DEV_USER_ID

        return self.token(DEV_USER_ID, orgs={DEV_ORG_ID: "owner"})

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    data_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
    module: str = "rpc.serve",
    startup_timeout: float = 30,
) -> RunningServer:
    """`python -m <module>` (rpc.serve, or rpc.serve_ray for Ray Serve) on 127.0.0.1, once
    /healthz answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASTOWN_")}
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "GASTOWN_DATA_DIR": str(data_dir),
            "NEXTAUTH_SECRET": TEST_SECRET,
            "GASTOWN_DEMO": "0",
            "GASTOWN_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    log_path = data_dir.parent / f"server-{port}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - the child process keeps writing to it
    process = subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = RunningServer(data_dir=data_dir, port=port, process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not start:\n{server.log_text()}")


def object_files(server: RunningServer, cls: str) -> list[Path]:
    """Every database file of an object class, wherever the server's backend keeps it: the
    local backend under <data>/<Class>/, the Ray backend under <data>/<node>/<Class>/."""
    return sorted([*server.data_dir.glob(f"{cls}/*.sqlite3"), *server.data_dir.glob(f"*/{cls}/*.sqlite3")])


def object_file(server: RunningServer, cls: str, object_id: str) -> Path:
    """The database file of one object (its local-backend path if it has none yet)."""
    from dos.runtime import encode_object_id

    name = f"{encode_object_id(object_id)}.sqlite3"
    found = [p for p in object_files(server, cls) if p.name == name]
    return found[0] if found else server.data_dir / cls / name
