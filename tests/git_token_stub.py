"""A real HTTP git-token provider for tests (GASTOWN_GIT_TOKEN_SERVICE_URL, fork.md §3).

It listens on 127.0.0.1 (ephemeral port) in a background thread, records every request body,
and answers according to `mode`:

- "ok":      200 `{token, installationId}`, a fresh token per request (`issued`)
- "error":   500 with a JSON error body
- "garbage": 200 with a body that is not the expected JSON
- "hang":    never answers until stopped (the server's client times out)
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

Mode = Literal["ok", "error", "garbage", "hang"]


@dataclass
class GitTokenStub:
    mode: Mode = "ok"
    installation_id: int = 4242
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # tokens handed out, in order
    hanging_now: int = 0  # requests being held right now in "hang" mode
    most_hanging: int = 0  # the most held at once: > 1 proves the server asks in parallel
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "stub not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> GitTokenStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with stub._lock:
                    stub.requests.append({"path": self.path, "body": body})
                if stub.mode == "hang":
                    with stub._lock:
                        stub.hanging_now += 1
                        stub.most_hanging = max(stub.most_hanging, stub.hanging_now)
                    stub._release.wait(timeout=60)
                    with stub._lock:
                        stub.hanging_now -= 1
                    return
                if stub.mode == "error":
                    self._answer(500, b'{"error":"provider exploded"}')
                elif stub.mode == "garbage":
                    self._answer(200, b"<html>not json at all")
                else:
                    token = f"ghs_STUBCANARY{uuid.uuid4().hex}"
                    with stub._lock:
                        stub.issued.append(token)
                    payload = {"token": token, "installationId": stub.installation_id}
                    self._answer(200, json.dumps(payload).encode())

            def _answer(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="git-token-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r["body"] for r in self.requests]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
