"""The web app at `/`: the files Vite builds into web/dist, and index.html for every other page
path (the app routes on the client). It is the router's fallback, so it only ever sees paths
no route matches: `/trpc`, `/rpc` and `/health*` answer exactly as before, and anything that
is not a GET or HEAD of a page gets the router's own 404.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
# API paths are never pages, even where no route matches them (`/trpc`, `/health/x`).
_API_PREFIXES = ("trpc", "rpc", "health")

# Built files only: the bundle has no inline script or style, and talks to this origin alone.
_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
_NO_CACHE = {"cache-control": "no-cache"}
# File names under assets/ carry a content hash: a name never changes content.
_IMMUTABLE = {"cache-control": "public, max-age=31536000, immutable"}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gastown: web app not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The web app is not built yet</h1>
<p>This server serves the web app from <code>web/dist</code>, which is missing. Build it with</p>
<pre>npm ci --prefix web
npm run build --prefix web</pre>
<p>or start the server with <code>scripts/serve</code>, which builds it when it is missing or stale.
Then reload this page. The API (<code>/trpc</code>, <code>/rpc</code>) works either way.</p>
</body></html>
"""


class WebApp:
    def __init__(self, dist: Path, fallback: ASGIApp) -> None:
        self.dist = dist.resolve()
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self._response(scope) if scope["type"] == "http" else None
        if response is None:
            await self.fallback(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _response(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        first = path.lstrip("/").split("/", 1)[0]
        if scope["method"] not in ("GET", "HEAD") or first.startswith(_API_PREFIXES):
            return None
        index = self.dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=_NO_CACHE)
        file = self._file(path)
        if file is not None:
            cache = _IMMUTABLE if first == "assets" else _NO_CACHE
            return FileResponse(file, headers={**_HEADERS, **cache})
        if first == "assets":
            return None  # a missing asset is a 404, never the page
        return FileResponse(index, media_type="text/html", headers={**_HEADERS, **_NO_CACHE})

    def _file(self, path: str) -> Path | None:
        """A built file named by the path, never one outside the bundle."""
        relative = path.lstrip("/")
        if relative == "" or "\x00" in relative:
            return None
        candidate = (self.dist / relative).resolve()
        if not candidate.is_relative_to(self.dist) or not candidate.is_file():
            return None
        return candidate


def serve_web_app(app: Starlette, dist: Path | None = None) -> None:
    """Make the web app the fallback of the app's routes."""
    app.router.default = WebApp(dist or WEB_DIST, app.router.default)
