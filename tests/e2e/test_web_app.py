"""The web app in headless Chromium (Debian's, driven by Playwright), against the real server in
dev mode with the demo towns and the built bundle (web/dist; scripts/test builds it).

The acceptance flow of issue 8: sign in through the dev URL that the server prints, the town
list, a town, its settings, the Fork Town dialog with its preview counts and env-var warning,
a fork into the organization, the new town with its "forked from", back to the source with the
fork under "forks of this town"; then a plain org member forks the org town and is told the
env vars are withheld. Every step is screenshotted at 1280×800 and 390×844, checking that the
page never scrolls sideways.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpc.auth import OrgMembership, mint_token
from rpc.startup import DEV_ORG_ID, DEV_USER_ID
from tests.server import ROOT, RunningServer, start_server
from tests.trpc import mutate, query

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install -e '.[test]'")

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
DIST = ROOT / "web" / "dist" / "index.html"
SIGN_IN_LINE = re.compile(r"open the web app, signed in: (http://\S+/#token=\S+)")
ORG_FORK = "Demo in the org"
MEMBER_FORK = "Member copy"
MEMBER = "plain-member"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    if not DIST.exists():
        pytest.fail("web/dist is not built: run `npm ci --prefix web && npm run build --prefix web` (scripts/test does)")
    root = tmp_path_factory.mktemp("web-app")
    # An empty NEXTAUTH_SECRET is dev mode: the dev secret, the demo towns, the sign-in URL.
    running = start_server(root / "data", extra_env={"NEXTAUTH_SECRET": "", "GASTOWN_DEMO": "1"})
    running.secret = (root / "data" / "dev-secret").read_text().strip()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (scripts/test does)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


class Shots:
    """Screenshots of each step at both sizes, in the test's output directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def __call__(self, page: Any, step: str, reveal: Any = None) -> None:
        for label, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(60)  # one layout pass at the new size
            if reveal is not None:
                reveal.scroll_into_view_if_needed()
            scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            path = self.directory / f"{step}-{label}.png"
            page.screenshot(path=str(path))
            self.taken.append(path)
            assert scroll <= inner, f"{step} scrolls sideways at {width}×{height} ({scroll} > {inner}); see {path}"
        page.set_viewport_size({"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]})


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shots]:
    taken = Shots(tmp_path_factory.mktemp("web-app-screenshots"))
    yield taken
    print(f"\nweb app screenshots ({len(taken.taken)}): {taken.directory}")


def _new_page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # The browser logs each HTTP error status; the app shows those itself, so they are not problems.
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}")
        if m.type == "error" and not m.text.startswith("Failed to load resource")
        else None,
    )
    return context, page, problems


def _counts(page: Any, label: str) -> dict[str, int]:
    """The numbers of one count list of the preview, by their data-count key."""
    items = page.get_by_role("dialog").locator(f"dl[aria-label='{label}'] > div")
    return {
        item.get_attribute("data-count"): int(item.locator("dd").inner_text().replace(",", ""))
        for item in items.all()
    }


def _warning(page: Any, code: str) -> Any:
    return page.get_by_role("dialog").locator(f"li.warning[data-code='{code}']")


def test_fork_town_in_the_browser(dev_server: RunningServer, browser: Any, shots: Shots) -> None:
    expect = playwright_api.expect
    log = dev_server.log_text()
    match = SIGN_IN_LINE.search(log)
    assert match is not None, f"the dev server printed no sign-in URL:\n{log}"
    sign_in_url = match[1]
    owner = dev_server.client(dev_server.token(DEV_USER_ID, orgs={DEV_ORG_ID: "owner"}))
    demo = next(t for t in query(owner, "listTowns") if t["name"] == "Demo Town")
    org_town = next(t for t in query(owner, "listOrgTowns", {"organizationId": DEV_ORG_ID}))
    dry = mutate(owner, "forkOrgTown", {"sourceTownId": demo["id"], "organizationId": DEV_ORG_ID, "newTownName": "x", "dryRun": True})

    context, page, problems = _new_page(browser)
    # 1. Sign in through the dev URL: the token leaves the address bar at once.
    page.goto(sign_in_url)
    expect(page.get_by_role("heading", name="Personal towns")).to_be_visible()
    assert "token" not in page.url, page.url
    assert page.evaluate("sessionStorage.getItem('gastown.token')") == sign_in_url.split("#token=", 1)[1]
    expect(page.get_by_role("link", name="Demo Town", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Demo Org Town")).to_be_visible()
    expect(page.get_by_role("button", name="Fork Demo Town", exact=True)).to_be_visible()
    shots(page, "01-town-list")

    # 2. A town: rigs, recent beads and events, no forks yet.
    page.get_by_role("link", name="Demo Town", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Demo Town")).to_be_focused()
    expect(page.get_by_text("No forks that you can see yet.")).to_be_visible()
    for rig in ("gastown-web", "gastown-api", "infra"):
        expect(page.locator("section", has=page.get_by_role("heading", name="Rigs")).get_by_text(rig, exact=True)).to_be_visible()
    expect(page.locator("section", has=page.get_by_role("heading", name="Recent beads")).locator("li")).to_have_count(12)
    expect(page.locator("section", has=page.get_by_role("heading", name="Recent events")).locator("li")).to_have_count(12)
    shots(page, "02-town")

    # 3. Its settings, editable for the owner, secrets hidden until shown.
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Environment variables")).to_be_visible()
    for section in ("Git authentication", "Commit identity", "Agent defaults", "Merge strategy", "Refinery", "Custom instructions", "Fork Town"):
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    expect(page.get_by_label("Name of variable 1")).to_have_value("NODE_ENV")
    expect(page.get_by_label("Value of NODE_ENV")).to_have_attribute("type", "password")
    expect(page.get_by_label("Git author name")).to_be_editable()
    shots(page, "03-settings")

    # 4. Fork Town: focus moves in, Esc closes and gives focus back.
    opener = page.get_by_role("button", name="Fork this town…")
    opener.click()
    dialog = page.get_by_role("dialog", name="Fork “Demo Town”")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Fork into")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    opener.click()
    expect(dialog.get_by_role("heading", name="Will be copied")).to_be_visible()
    assert _counts(page, "Will be copied") == dry["copied"]
    skipped = _counts(page, "Will be left behind")
    assert skipped == {k: v for k, v in dry["skipped"].items() if v > 0}
    env_warning = _warning(page, "ENV_VARS_COPIED")
    expect(env_warning).to_contain_text("Environment variables will be copied")
    expect(env_warning).to_contain_text("may be secrets")
    for key in ("NODE_ENV", "SENTRY_DSN", "API_BASE"):
        expect(env_warning).to_contain_text(key)
    expect(_warning(page, "SECRETS_NOT_COPIED")).to_contain_text("GitHub CLI token")
    expect(_warning(page, "GIT_CREDENTIALS_MISSING")).to_contain_text("infra")
    shots(page, "04-fork-preview")
    shots(page, "04b-fork-preview-warnings", reveal=env_warning)

    # The name is checked as it is typed.
    name = dialog.get_by_label("New town name")
    name.fill("")
    expect(dialog.get_by_text("Enter a name for the new town.")).to_be_visible()
    expect(dialog.get_by_role("button", name="Fork", exact=True)).to_be_disabled()
    name.fill("x" * 65)
    expect(dialog.get_by_text("Use at most 64 characters (this is 65).")).to_be_visible()
    expect(name).to_have_attribute("aria-invalid", "true")
    shots(page, "05-fork-name-invalid")

    # 5. Fork into the organization, then land on the new town.
    name.fill(ORG_FORK)
    dialog.get_by_label("Fork into").select_option(f"org:{DEV_ORG_ID}")
    expect(dialog.get_by_role("heading", name="Will be copied")).to_be_visible()
    dialog.get_by_role("button", name="Fork", exact=True).dblclick()  # a double click makes one town
    open_link = dialog.get_by_role("link", name=f"Open “{ORG_FORK}”")
    expect(open_link).to_be_visible(timeout=30_000)
    expect(open_link).to_be_focused()
    expect(dialog.get_by_role("status").filter(has_text="Forked into Organization")).to_be_visible()
    shots(page, "06-fork-done")
    open_link.click()
    expect(page.get_by_role("heading", level=1, name=ORG_FORK)).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    forked_from = page.locator(".forked-from")
    expect(forked_from).to_contain_text("forked from Demo Town")
    shots(page, "07-new-town")

    # 6. Back to the source: the fork is among its forks.
    forked_from.get_by_role("link", name="Demo Town").click()
    expect(page.get_by_role("heading", level=1, name="Demo Town")).to_be_visible()
    forks = page.get_by_role("list", name="Forks")
    expect(forks.get_by_role("link", name=ORG_FORK)).to_be_visible()
    expect(forks.locator("li")).to_have_count(1)
    shots(page, "08-source-lists-its-fork")
    org_towns = query(owner, "listOrgTowns", {"organizationId": DEV_ORG_ID})
    assert [t["name"] for t in org_towns].count(ORG_FORK) == 1, "one fork, one town"
    assert [t["name"] for t in query(owner, "listForks", {"townId": demo["id"]})] == [ORG_FORK]
    assert problems == [], problems
    context.close()

    # 7. A plain member of the org signs in with a pasted token and forks the org town: the env
    # vars are withheld, and the dialog says why.
    member_token = mint_token(dev_server.secret, MEMBER, org_memberships=[OrgMembership(orgId=DEV_ORG_ID, role="member")])
    context, page, problems = _new_page(browser)
    page.goto(dev_server.base_url + "/")
    expect(page.get_by_role("heading", name="Sign in to Gastown")).to_be_visible()
    shots(page, "09-sign-in")
    page.get_by_label("Bearer token").fill(member_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Demo Org Town")).to_be_visible()
    expect(page.get_by_text("No personal towns yet.")).to_be_visible()
    page.get_by_role("link", name="Demo Org Town").click()
    expect(page.get_by_role("heading", level=1, name="Demo Org Town")).to_be_visible()
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("note")).to_contain_text("Secrets are masked")
    expect(page.get_by_label("Value of SENTRY_DSN")).to_have_value(re.compile(r"^\*{4}.{0,4}$"))
    expect(page.get_by_label("Git author name")).to_be_disabled()
    shots(page, "10-member-settings-read-only")
    page.get_by_role("button", name="Fork this town…").click()
    dialog = page.get_by_role("dialog", name="Fork “Demo Org Town”")
    withheld = _warning(page, "ENV_VARS_NOT_COPIED")
    expect(withheld).to_contain_text("Environment variables will not be copied")
    expect(withheld).to_contain_text("withheld")
    expect(withheld).to_contain_text("you may not see this town’s secrets")
    for key in ("NODE_ENV", "SENTRY_DSN", "API_BASE"):
        expect(withheld).to_contain_text(key)
    expect(_warning(page, "ENV_VARS_COPIED")).to_have_count(0)
    shots(page, "11-member-preview-env-withheld", reveal=withheld)
    dialog.get_by_label("New town name").fill(MEMBER_FORK)
    dialog.get_by_role("button", name="Fork", exact=True).click()
    open_link = dialog.get_by_role("link", name=f"Open “{MEMBER_FORK}”")
    expect(open_link).to_be_visible(timeout=30_000)
    expect(_warning(page, "ENV_VARS_NOT_COPIED")).to_contain_text("Environment variables were not copied")
    shots(page, "12-member-fork-done")
    open_link.click()
    expect(page.locator(".forked-from")).to_contain_text("forked from Demo Org Town")
    shots(page, "13-member-new-town")
    member = dev_server.client(member_token)
    made = next(t for t in query(member, "listTowns") if t["name"] == MEMBER_FORK)
    assert query(member, "getTownConfig", {"townId": made["id"]})["env_vars"] == {}
    assert [t["name"] for t in query(member, "listForks", {"townId": org_town["id"]})] == [MEMBER_FORK]
    assert problems == [], problems
    context.close()



def test_a_lost_answer_is_retried_with_the_same_key_and_errors_are_words(
    dev_server: RunningServer, browser: Any, shots: Shots
) -> None:
    expect = playwright_api.expect
    user = f"retry-{uuid.uuid4().hex[:6]}"
    token = mint_token(dev_server.secret, user)
    client = dev_server.client(token)
    source = mutate(client, "createTown", {"name": "Retry source"})
    context, page, problems = _new_page(browser)
    page.goto(f"{dev_server.base_url}/#token={token}")
    expect(page.get_by_role("link", name="Retry source")).to_be_visible()

    # The first fork reaches the server, but its answer is lost on the way back.
    keys: list[str] = []

    def fork_key(route: Any) -> str | None:
        body = json.loads(route.request.post_data or "{}")
        return None if body.get("dryRun") else str(body["idempotencyKey"])

    def lose_answer(route: Any) -> None:
        key = fork_key(route)
        if key is None:
            route.continue_()  # previews go through
            return
        keys.append(key)
        route.fetch()  # the server does the fork…
        route.abort("connectionreset")  # …and the browser never hears of it

    def record(route: Any) -> None:
        key = fork_key(route)
        if key is not None:
            keys.append(key)
        route.continue_()

    page.route("**/trpc/gastown.forkTown", lose_answer)
    page.get_by_role("button", name="Fork Retry source").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New town name").fill("Retried fork")
    expect(dialog.get_by_role("heading", name="Will be copied")).to_be_visible()
    dialog.get_by_role("button", name="Fork", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("Cannot reach the server")
    expect(dialog.get_by_role("button", name="Retry")).to_be_visible()
    shots(page, "20-fork-network-error", reveal=dialog.get_by_role("button", name="Retry"))
    assert [t["name"] for t in query(client, "listTowns")].count("Retried fork") == 1

    # A reload resumes it: the same input and key again, and the server's first answer.
    page.unroute("**/trpc/gastown.forkTown")
    page.route("**/trpc/gastown.forkTown", record)
    page.reload()
    banner = page.get_by_role("region", name="Forks", exact=True)
    expect(banner).to_contain_text("is ready", timeout=30_000)
    shots(page, "21-fork-resumed-after-reload")
    assert len(keys) == 2 and keys[0] == keys[1], keys
    assert [t["name"] for t in query(client, "listTowns")].count("Retried fork") == 1, "the retry made a second town"
    banner.get_by_role("link", name="Open “Retried fork”").click()
    expect(page.locator(".forked-from")).to_contain_text("forked from Retry source")
    page.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("region", name="Forks", exact=True)).to_have_count(0)

    # Errors in words: a source deleted under the open dialog, a town that does not exist.
    page.goto(f"{dev_server.base_url}/towns/{source['id']}")
    page.get_by_role("button", name="Fork town").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Will be copied")).to_be_visible()
    mutate(client, "deleteTown", {"townId": source["id"]})
    dialog.get_by_role("button", name="Fork", exact=True).click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("The fork did not finish.")
    expect(alert).to_contain_text("Not found: it does not exist (any more), or you do not have access to it.")
    assert "{" not in alert.inner_text()
    shots(page, "22-fork-source-gone", reveal=alert)
    page.keyboard.press("Escape")
    page.goto(f"{dev_server.base_url}/towns/{uuid.uuid4()}")
    expect(page.get_by_role("heading", level=1, name="Town not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Could not open this town.")
    shots(page, "23-town-not-found")
    assert problems == [], problems
    context.close()
