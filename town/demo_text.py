"""Word pools for the demo town (town/demo.py): plausible titles, bodies and agent names."""

from __future__ import annotations

import random

# Upstream draws polecat names from a 20-name pool, then `Polecat-<n>`.
POLECAT_NAMES: tuple[str, ...] = (
    "Toast",
    "Nux",
    "Slit",
    "Rictus",
    "Capable",
    "Dag",
    "Cheedo",
    "Angharad",
    "Furiosa",
    "Ace",
    "Keeper",
    "Valkyrie",
    "Morsov",
    "Corpus",
    "Organic",
    "Prime",
    "Scabrous",
    "Splendid",
    "Giddy",
    "Immortan",
)

_VERBS = ("Fix", "Add", "Refactor", "Remove", "Document", "Speed up", "Test", "Migrate", "Harden")
_SUBJECTS = (
    "login redirect",
    "billing webhook",
    "rate limiter",
    "search index",
    "CSV export",
    "session cache",
    "retry logic",
    "dark mode toggle",
    "audit log",
    "email templates",
    "upload validation",
    "pagination",
    "feature flags",
    "health check",
    "config loader",
    "error boundary",
    "metrics endpoint",
    "websocket reconnect",
    "i18n strings",
    "CLI flags",
)
_PLACES = (
    "in the API gateway",
    "for org accounts",
    "on the settings page",
    "in the worker",
    "behind the feature flag",
    "for large tenants",
    "in the admin panel",
    "in CI",
)
_MODULES = ("api", "web", "worker", "cli", "billing", "auth", "search", "infra")

ESCALATION_REASONS: tuple[str, ...] = (
    "Merge conflict on {branch} needs a human decision",
    "CI has been red for 3 runs on {branch}",
    "Polecat {agent} is stuck waiting for credentials",
    "Test suite times out after 30 minutes in {module}",
    "Ambiguous requirements for {subject}",
    "Refinery rejected {branch} twice with the same feedback",
)
MAIL_SUBJECTS: tuple[str, ...] = (
    "Handoff: {subject}",
    "Please review {branch}",
    "Re: {subject}",
    "Blocked on {subject}",
    "FYI: {module} deploy finished",
    "Question about {subject}",
)
FORMULAS: tuple[str, ...] = ("release", "bugfix", "feature-flag-rollout", "dependency-bump")
STEP_NAMES: tuple[str, ...] = (
    "Write failing test",
    "Implement change",
    "Update docs",
    "Run full suite",
    "Open PR",
    "Address review",
    "Tag release",
)
FEEDBACK: tuple[str, ...] = (
    "Please add a regression test.",
    "The error path swallows the exception.",
    "Split this into two commits.",
    "Naming is inconsistent with the rest of the module.",
    "Looks good, but the migration is not reversible.",
)
STATUS_MESSAGES: tuple[str, ...] = (
    "Reading the codebase",
    "Running tests",
    "Writing the fix",
    "Waiting for CI",
    "Rebasing on main",
    "Preparing the PR description",
)
TOOLS: tuple[str, ...] = ("bash", "read", "edit", "grep", "glob", "webfetch")


def issue_title(rng: random.Random) -> str:
    return f"{rng.choice(_VERBS)} {rng.choice(_SUBJECTS)} {rng.choice(_PLACES)}"


def issue_body(rng: random.Random, title: str) -> str:
    module = rng.choice(_MODULES)
    return (
        f"{title}.\n\nContext: reported from the {module} module. "
        f"Acceptance: tests pass and the change is covered in `{module}/tests`."
    )


def fill(rng: random.Random, template: str, *, branch: str = "", agent: str = "") -> str:
    return template.format(
        branch=branch, agent=agent, module=rng.choice(_MODULES), subject=rng.choice(_SUBJECTS)
    )


def slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)[:40]
