"""The web app's files through the real server (rpc/web.py): `/` and every page path answer
index.html, hashed assets are cached for good, the API paths answer exactly as without the
app, nothing outside the bundle is ever served, and without a bundle `/` says how to build it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import RunningServer, start_server
from tests.trpc import query

INDEX = '<!doctype html><html><head><script type="module" src="/assets/app-1a2b3c.js"></script></head><body><div id="root"></div></body></html>'


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    (dist / "assets").mkdir()
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-1a2b3c.js").write_text("console.log('app');\n")
    (dist / "robots.txt").write_text("User-agent: *\n")
    (dist.parent / "secret.txt").write_text("outside the bundle\n")
    return dist


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, bundle: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("web") / "data", extra_env={"GASTOWN_WEB_DIR": str(bundle)})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def unbuilt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    empty = tmp_path_factory.mktemp("no-dist")
    running = start_server(tmp_path_factory.mktemp("unbuilt") / "data", extra_env={"GASTOWN_WEB_DIR": str(empty)})
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/", "/towns", "/towns/3f1c0d2e-0000-4000-8000-000000000001", "/towns/x/settings", "/anything/else"])
def test_page_paths_answer_the_app(web_server: RunningServer, path: str) -> None:
    response = httpx.get(web_server.base_url + path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    head = httpx.head(web_server.base_url + path)
    assert head.status_code == 200 and head.content == b""


def test_assets_are_served_and_cached_for_good(web_server: RunningServer) -> None:
    response = httpx.get(web_server.base_url + "/assets/app-1a2b3c.js")
    assert response.status_code == 200
    assert response.text == "console.log('app');\n"
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(web_server.base_url + "/robots.txt").text == "User-agent: *\n"
    # A missing asset is a 404, not the page (a stale tab must not run HTML as a script).
    missing = httpx.get(web_server.base_url + "/assets/app-old.js")
    assert missing.status_code == 404 and missing.json()["error"]["data"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"])
def test_nothing_outside_the_bundle_is_served(web_server: RunningServer, path: str) -> None:
    response = httpx.get(web_server.base_url + path)
    assert "outside the bundle" not in response.text


def test_api_paths_answer_as_without_the_app(web_server: RunningServer) -> None:
    base = web_server.base_url
    assert httpx.get(base + "/healthz").json()["ok"] is True
    assert httpx.get(base + "/health").json() == {"status": "ok"}
    assert httpx.get(base + "/rpc").status_code == 405  # POST only, as before
    for path in ("/health/x", "/healthzz", "/rpc/x", "/trpcx"):
        response = httpx.get(base + path)
        # The API's own 404: the tRPC error envelope, never the page.
        assert (response.status_code, response.json()["error"]["data"]["code"]) == (404, "NOT_FOUND"), path
    unauthenticated = httpx.get(base + "/trpc/gastown.listTowns")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["data"]["code"] == "UNAUTHORIZED"
    assert query(web_server.client(web_server.token("web-user")), "listTowns") == []
    # Only GET and HEAD are pages.
    assert httpx.post(base + "/towns", content=b"{}").status_code == 404


def test_without_a_bundle_the_root_says_how_to_build_it(unbuilt_server: RunningServer) -> None:
    response = httpx.get(unbuilt_server.base_url + "/")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "npm run build --prefix web" in response.text
    assert "scripts/serve" in response.text
    assert httpx.get(unbuilt_server.base_url + "/towns/x").status_code == 503
    assert httpx.get(unbuilt_server.base_url + "/healthz").status_code == 200
