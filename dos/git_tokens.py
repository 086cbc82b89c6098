"""Client of the git-token provider (GASTOWN_GIT_TOKEN_SERVICE_URL).

POST `{githubRepo, userId, orgId}` → `{token, installationId}`. Best effort: any failure is
"no credentials", reported by the caller as a warning. Tokens are never logged.
"""

from __future__ import annotations

import logging
import re

import httpx
import msgspec

log = logging.getLogger("gastown.git_tokens")

_GITHUB_REPO = re.compile(r"^(?:https?://|ssh://git@|git@)github\.com[/:]([^/\s]+)/([^/\s]+?)(?:\.git)?/?$")


class GitCredentials(msgspec.Struct, frozen=True):
    token: str
    installationId: str | int | None = None


def github_repo(git_url: str) -> str | None:
    """`owner/repo` for a github.com URL, else None (other hosts need their own credentials)."""
    match = _GITHUB_REPO.match(git_url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


class GitTokenProvider:
    def __init__(self, url: str | None, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def can_serve(self, git_url: str) -> bool:
        """Whether a token could be asked for at all (a provider is set and the rig is on GitHub)."""
        return self.url is not None and github_repo(git_url) is not None

    async def token_for(self, git_url: str, *, user_id: str, org_id: str | None) -> GitCredentials | None:
        repo = github_repo(git_url)
        if self.url is None or repo is None:
            return None
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json={"githubRepo": repo, "userId": user_id, "orgId": org_id})
            if response.status_code != 200:
                log.warning("git-token provider answered %s for %s", response.status_code, repo)
                return None
            creds = msgspec.json.decode(response.content, type=GitCredentials)
            return creds if creds.token else None
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            # Best effort by design (fork.md §3): the fork goes on and reports the rig.
            log.warning("git-token provider failed for %s: %s", repo, type(exc).__name__)
            return None
