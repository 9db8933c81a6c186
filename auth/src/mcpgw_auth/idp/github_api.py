"""GitHub's OAuth web flow and the few REST calls a sign-in needs, over Authlib's async httpx client.

Every failure leaves here as an UpstreamError carrying what went wrong as data; nothing else escapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from authlib.integrations.base_client import OAuthError as AuthlibOAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import oauth2_client as _authlib_httpx
from pydantic import BaseModel, ConfigDict

from mcpgw_auth.oauth.errors import ErrorCode

# Authlib runs on httpx2 when it is installed and on httpx otherwise: catch the errors of the one it uses.
_http: Any = _authlib_httpx.httpx2

Failure = Literal[
    "denied",
    "not_allowed",
    "bad_code",
    "timeout",
    "unavailable",
    "rate_limited",
    "misconfigured",
    "bad_credentials",
    "unexpected",
]

# What each failure becomes: the RFC 6749 §4.1.2.1 error code for the client, and the HTTP status of the error page
# shown when there is no client to send it to.
FAILURES: dict[Failure, tuple[ErrorCode, int]] = {
    "denied": ("access_denied", 403),
    "not_allowed": ("access_denied", 403),
    "bad_code": ("server_error", 502),
    "timeout": ("temporarily_unavailable", 503),
    "unavailable": ("temporarily_unavailable", 503),
    "rate_limited": ("temporarily_unavailable", 503),
    "misconfigured": ("server_error", 502),
    "bad_credentials": ("server_error", 502),
    "unexpected": ("server_error", 502),
}

_API_HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "mcp-oauth-gateway",
}


class UpstreamError(Exception):
    """A sign-in or re-check that GitHub did not complete; `detail` is safe to show to the user."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure
        self.detail = detail

    @property
    def error_code(self) -> ErrorCode:
        return FAILURES[self.failure][0]

    @property
    def status(self) -> int:
        return FAILURES[self.failure][1]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_Model):
    id: int
    login: str


class _Email(_Model):
    email: str
    primary: bool
    verified: bool


class _Membership(_Model):
    state: str


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str
    email: str | None  # the verified primary address, if the account has one


@dataclass(frozen=True)
class GitHubEndpoints:
    web_url: str  # https://github.com, or a GitHub Enterprise Server URL
    api_url: str  # https://api.github.com, or https://HOST/api/v3
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str
    timeout: float


def _rate_limited(response: Any) -> bool:
    """GitHub answers an exhausted rate limit with 403 (or 429) and X-RateLimit-Remaining: 0 or Retry-After."""
    headers = response.headers
    return response.status_code in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    )


def _raise_for_upstream(response: Any) -> Any:
    """Turn the answers that mean "GitHub cannot serve us now" into UpstreamErrors; pass the others on."""
    if _rate_limited(response):
        raise UpstreamError("rate_limited", "GitHub's API rate limit is exhausted; try again in a while.")
    if response.status_code >= 500:
        raise UpstreamError("unavailable", f"GitHub answered with an error ({response.status_code}); try again.")
    return response


@contextlib.contextmanager
def _calling_github() -> Iterator[None]:
    try:
        yield
    except UpstreamError:
        raise
    except _http.TimeoutException:
        raise UpstreamError("timeout", "GitHub did not answer in time; try again.") from None
    except _http.HTTPStatusError as exc:
        raise UpstreamError("unavailable", f"GitHub answered with an error ({exc.response.status_code}).") from None
    except _http.HTTPError:
        raise UpstreamError("unavailable", "GitHub could not be reached; try again.") from None
    except AuthlibOAuthError as exc:
        if exc.error == "bad_verification_code":
            raise UpstreamError("bad_code", "GitHub did not accept the sign-in code (it expires quickly).") from None
        if exc.error in ("incorrect_client_credentials", "redirect_uri_mismatch"):
            raise UpstreamError(
                "misconfigured", "The gateway's GitHub OAuth app is misconfigured; tell the operator."
            ) from None
        raise UpstreamError("unexpected", "GitHub refused the sign-in.") from None
    except (ValueError, KeyError, TypeError):  # malformed JSON or fields (pydantic errors are ValueErrors)
        raise UpstreamError("unexpected", "GitHub sent an answer the gateway does not understand.") from None


class GitHubSession:
    """One sign-in's (or one re-check's) conversation with GitHub; answers `MembershipSource` questions."""

    def __init__(self, client: Any, endpoints: GitHubEndpoints) -> None:
        self._client = client
        self._endpoints = endpoints

    @property
    def access_token(self) -> str:
        token: str = self._client.token["access_token"]
        return token

    def authorization_url(self, state: str, code_verifier: str) -> str:
        # RFC 6749 §4.1.1 with RFC 7636 S256 (GitHub accepts PKCE for OAuth apps).
        url, _ = self._client.create_authorization_url(
            f"{self._endpoints.web_url}/login/oauth/authorize", state=state, code_verifier=code_verifier
        )
        return str(url)

    async def exchange(self, code: str, code_verifier: str) -> None:
        """RFC 6749 §4.1.3 at GitHub's token endpoint; GitHub reports errors as 200 with an `error` field."""
        with _calling_github():
            token = await self._client.fetch_token(
                f"{self._endpoints.web_url}/login/oauth/access_token",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=self._endpoints.redirect_uri,
            )
            if not isinstance(token.get("access_token"), str) or not token["access_token"]:
                raise UpstreamError("unexpected", "GitHub's token response carried no access token.")

    async def user(self) -> GitHubUser:
        with _calling_github():
            response = await self._get("/user")
            if response.status_code == 401:
                raise UpstreamError("bad_credentials", "GitHub did not accept the access token it issued.")
            if response.status_code != 200:
                raise UpstreamError("unexpected", f"GitHub's /user answered {response.status_code}.")
            user = _User.model_validate_json(response.content)
            emails = await self._get("/user/emails")
            email = None
            if emails.status_code == 200:  # without the user:email scope there is no list: sign in without it
                listed = [_Email.model_validate(item) for item in emails.json()]
                email = next((e.email for e in listed if e.primary and e.verified), None)
        return GitHubUser(user.id, user.login, email)

    async def in_org(self, org: str) -> bool:
        return await self._active(f"/user/memberships/orgs/{quote(org, safe='')}")

    async def in_team(self, org: str, team: str, login: str) -> bool:
        path = f"/orgs/{quote(org, safe='')}/teams/{quote(team, safe='')}/memberships/{quote(login, safe='')}"
        return await self._active(path)

    async def _active(self, path: str) -> bool:
        """200 with state "active" is membership; 404 (or a plain 403) is none; "pending" invitations do not count."""
        with _calling_github():
            response = await self._get(path)
            if response.status_code == 401:
                raise UpstreamError("bad_credentials", "GitHub no longer accepts the user's token.")
            if response.status_code != 200:
                return False
            return _Membership.model_validate_json(response.content).state == "active"

    async def _get(self, path: str) -> Any:
        return _raise_for_upstream(await self._client.get(f"{self._endpoints.api_url}{path}"))


@contextlib.asynccontextmanager
async def github_session(endpoints: GitHubEndpoints, access_token: str | None = None) -> AsyncIterator[GitHubSession]:
    token = {"access_token": access_token, "token_type": "bearer"} if access_token else None
    client = AsyncOAuth2Client(
        client_id=endpoints.client_id,
        client_secret=endpoints.client_secret,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name, not a secret
        scope=endpoints.scope,
        redirect_uri=endpoints.redirect_uri,
        code_challenge_method="S256",
        token=token,
        timeout=endpoints.timeout,
        headers=_API_HEADERS,
    )
    client.register_compliance_hook("access_token_response", _raise_for_upstream)
    async with client:
        yield GitHubSession(client, endpoints)
