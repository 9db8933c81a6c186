"""The GitHub identity provider: the OAuth App web flow (RFC 6749 §4.1 with PKCE), the user it signs in, and the
allowlist applied to them. Its routes are web/login_github.py; our own consent page comes after it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcpgw_auth.idp.allowlist import Allowlist
from mcpgw_auth.idp.base import UpstreamTokens
from mcpgw_auth.idp.github_api import Failure, GitHubEndpoints, UpstreamError, github_session
from mcpgw_auth.idp.github_policy import SUBJECT_PREFIX, GitHubAccessPolicy
from mcpgw_auth.records import Identity
from mcpgw_auth.sealing import TokenSealer

CALLBACK_PATH = "/login/github/callback"

_CALLBACK_ERRORS: dict[str, Failure] = {  # errors GitHub puts on the callback besides access_denied
    "redirect_uri_mismatch": "misconfigured",
    "application_suspended": "misconfigured",
}


@dataclass(frozen=True)
class GitHubConfig:
    client_id: str
    client_secret: str
    web_url: str
    api_url: str
    issuer: str
    timeout: float
    allowlist: Allowlist
    token_key: bytes | None  # seals the GitHub tokens kept for membership re-checks
    membership_cache_ttl: int


class GitHubIdentityProvider:
    name = "github"

    def __init__(self, config: GitHubConfig, tokens: UpstreamTokens, clock: Callable[[], float]) -> None:
        self._allowlist = config.allowlist
        self._endpoints = GitHubEndpoints(
            web_url=config.web_url,
            api_url=config.api_url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            redirect_uri=f"{config.issuer}{CALLBACK_PATH}",
            # user:email for the verified primary address; read:org to see org and team memberships.
            scope="user:email read:org" if self._allowlist.needs_membership else "user:email",
            timeout=config.timeout,
        )
        sealer = TokenSealer(config.token_key) if config.token_key is not None else None
        self.access_policy = GitHubAccessPolicy(
            self._allowlist, self._endpoints, tokens, sealer, config.membership_cache_ttl, clock
        )

    async def begin(self, state: str, code_verifier: str) -> str:
        """Where to send the browser: GitHub's authorization page for this `state` and PKCE verifier."""
        async with github_session(self._endpoints) as github:
            return github.authorization_url(state, code_verifier)

    async def complete(self, error: str | None, code: str | None, code_verifier: str) -> Identity:
        """The user GitHub's callback signed in, if the allowlist lets them in; UpstreamError otherwise."""
        if error == "access_denied":  # the user pressed Cancel on GitHub's authorization page
            raise UpstreamError("denied", "The authorization was declined on GitHub.")
        if error is not None:
            raise UpstreamError(_CALLBACK_ERRORS.get(error, "unexpected"), "GitHub refused the sign-in.")
        if not code:
            raise UpstreamError("unexpected", "GitHub's answer carried no authorization code.")
        async with github_session(self._endpoints) as github:
            await github.exchange(code, code_verifier)
            user = await github.user()
            if not await self._allowlist.allows(user.login, github):
                raise UpstreamError("not_allowed", f"The GitHub account {user.login} may not use this gateway.")
            identity = Identity(subject=f"{SUBJECT_PREFIX}{user.id}", username=user.login, email=user.email)
            await self.access_policy.keep_token(identity, github.access_token)
        return identity
