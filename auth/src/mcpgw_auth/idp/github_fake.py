"""A fake GitHub speaking the wire formats the GitHub provider meets: the OAuth App web flow (authorize, a sign-in and
an authorization page, the token endpoint answering errors as 200 with `error` fields) and the REST calls (GET /user,
/user/emails, /user/memberships/orgs/{org}, /orgs/{org}/teams/{team}/memberships/{user}), with GitHub's failures on
demand: a declined authorization, bad_verification_code, the rate-limit 403, 5xx, slow answers, revoked tokens.

It is an ASGI app: serve it on 127.0.0.1 with any ASGI server and point AUTH_GITHUB_BASE_URL and AUTH_GITHUB_API_URL
at it. Both URLs are the same origin here (GitHub uses github.com and api.github.com).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

Fault = Literal["server_error", "rate_limit", "slow", "bad_verification_code"]
Endpoint = Literal["token", "user", "emails", "org_membership", "team_membership"]

_DOCS = "https://docs.github.com/rest"
_ORG_SCOPES = frozenset({"read:org", "write:org", "admin:org"})
_BAD_CODE_URI = "https://docs.github.com/apps/oauth-apps/troubleshooting-oauth-app-access-token-request-errors"


@dataclass
class FakeUser:
    id: int
    login: str
    email: str | None = None  # the verified primary address
    orgs: dict[str, str] = field(default_factory=dict)  # org (lowercase) -> "active" | "pending"
    teams: set[tuple[str, str]] = field(default_factory=set)  # (org, team slug), lowercase


@dataclass(frozen=True)
class _Code:
    login: str
    redirect_uri: str | None
    scopes: frozenset[str]
    challenge: str | None
    expires_at: float


class FakeGitHub:
    """State is plain attributes, safe to change from a test while the server runs in another thread."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        callback_url: str | None = None,
        slow_seconds: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.callback_url = callback_url  # None: any redirect_uri is accepted
        self.slow_seconds = slow_seconds
        self.users: dict[str, FakeUser] = {}
        self.signed_in: str | None = None  # the login of the browser's GitHub session
        self.prompt = False  # show the authorization page instead of redirecting back at once
        self.deny = False  # the user presses Cancel on the authorization page
        self.seen: list[str] = []  # "METHOD path status", in order
        self._faults: dict[str, list[Fault]] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, tuple[str, frozenset[str]]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/login/oauth/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/session", self._session, methods=["POST"]),
                Route("/login/oauth/access_token", self._token, methods=["POST"]),
                Route("/user", self._user),
                Route("/user/emails", self._emails),
                Route("/user/memberships/orgs/{org}", self._org_membership),
                Route("/orgs/{org}/teams/{team}/memberships/{username}", self._team_membership),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status: list[int] = []

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)
        if scope["type"] == "http":
            with self._lock:
                self.seen.append(f"{scope['method']} {scope['path']} {status[0] if status else '-'}")

    # Test controls

    def add_user(
        self, login: str, *, email: str | None = None, orgs: tuple[str, ...] = (), teams: tuple[str, ...] = ()
    ) -> FakeUser:
        user = FakeUser(
            id=100_000 + len(self.users),
            login=login,
            email=email,
            orgs={org.lower(): "active" for org in orgs},
            teams={(t.split("/")[0].lower(), t.split("/")[1].lower()) for t in teams},
        )
        self.users[login.lower()] = user
        return user

    def fail(self, endpoint: Endpoint, fault: Fault, times: int = 1) -> None:
        """The next `times` calls of `endpoint` meet `fault`."""
        with self._lock:
            self._faults.setdefault(endpoint, []).extend([fault] * times)

    def revoke_tokens(self, login: str) -> None:
        """The user revoked the app in their GitHub settings: every token issued to them stops working."""
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] != login.lower()}

    def tokens_of(self, login: str) -> list[str]:
        """The live access tokens issued to `login` (to check where they end up)."""
        with self._lock:
            return [token for token, (owner, _) in self._tokens.items() if owner == login.lower()]

    def requests(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [entry for entry in self.seen if entry.split(" ", 2)[1].startswith(prefix)]

    # OAuth web flow

    async def _authorize(self, request: Request) -> Response:
        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if params.get("client_id") != self.client_id:
            return HTMLResponse("<h1>404 Not Found</h1>", status_code=404)
        redirect_uri = params.get("redirect_uri") or self.callback_url or ""
        state = params.get("state")
        if self.callback_url is not None and not redirect_uri.startswith(self.callback_url):
            return _back(self.callback_url, state, error="redirect_uri_mismatch")
        login = self.signed_in
        if login is None or login.lower() not in self.users:
            return _page("Sign in to GitHub", _sign_in_form(str(request.url)))
        decision = params.get("decision")
        if self.deny or decision == "cancel":
            return _back(redirect_uri, state, error="access_denied")
        if self.prompt and decision != "authorize":
            return _page("Authorize application", _authorize_form(params, login))
        code = secrets.token_hex(10)
        scopes = frozenset(params.get("scope", "").replace(",", " ").split())
        challenge = params.get("code_challenge") if params.get("code_challenge_method") == "S256" else None
        record = _Code(login.lower(), params.get("redirect_uri"), scopes, challenge, time.time() + 600)
        with self._lock:
            self._codes[code] = record
        return _back(redirect_uri, state, code=code)

    async def _session(self, request: Request) -> Response:
        form = await request.form()
        login, return_to = str(form.get("login", "")), str(form.get("return_to", "/"))
        if login.lower() not in self.users or urlsplit(return_to).netloc != request.url.netloc:
            return _page("Sign in to GitHub", "<p>Incorrect username.</p>", status=422)
        self.signed_in = login
        return RedirectResponse(return_to, status_code=302)

    async def _token(self, request: Request) -> Response:
        if (faulted := await self._apply_fault("token", request)) is not None:
            return faulted
        if request.headers.get("content-type", "").startswith("application/json"):
            body = {k: str(v) for k, v in json.loads(await request.body()).items()}
        else:
            body = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = body.get("client_id"), body.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        wants_json = "application/json" in request.headers.get("accept", "")
        if client_id != self.client_id or not hmac.compare_digest(client_secret or "", self.client_secret):
            return _token_error(
                wants_json, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."
            )
        with self._lock:
            code = self._codes.pop(body.get("code", ""), None)  # single use
        if code is None or code.expires_at < time.time():
            return _token_error(wants_json, "bad_verification_code", "The code passed is incorrect or expired.")
        if body.get("redirect_uri") and code.redirect_uri and body["redirect_uri"] != code.redirect_uri:
            return _token_error(
                wants_json,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        if code.challenge is not None and _s256(body.get("code_verifier", "")) != code.challenge:
            return _token_error(wants_json, "bad_verification_code", "The code_verifier does not match.")
        token = "gho_" + secrets.token_urlsafe(27)
        with self._lock:
            self._tokens[token] = (code.login, code.scopes)
        answer = {"access_token": token, "token_type": "bearer", "scope": ",".join(sorted(code.scopes))}
        if wants_json:
            return JSONResponse(answer)
        return PlainTextResponse(urlencode(answer), media_type="application/x-www-form-urlencoded")

    # REST API

    async def _user(self, request: Request) -> Response:
        caller = await self._caller("user", request)
        if isinstance(caller, Response):
            return caller
        user, _ = caller
        return _api(
            {
                "login": user.login,
                "id": user.id,
                "node_id": f"U_{user.id}",
                "type": "User",
                "site_admin": False,
                "name": user.login.title(),
                "email": None,
            }
        )

    async def _emails(self, request: Request) -> Response:
        caller = await self._caller("emails", request)
        if isinstance(caller, Response):
            return caller
        user, scopes = caller
        if not scopes & {"user", "user:email"}:
            return _not_found()
        noreply = f"{user.login.lower()}@users.noreply.github.com"
        listed = [{"email": noreply, "primary": user.email is None, "verified": True, "visibility": None}]
        if user.email is not None:
            listed.insert(0, {"email": user.email, "primary": True, "verified": True, "visibility": "private"})
        return _api(listed)

    async def _org_membership(self, request: Request) -> Response:
        caller = await self._caller("org_membership", request)
        if isinstance(caller, Response):
            return caller
        user, scopes = caller
        org = request.path_params["org"].lower()
        if not scopes & _ORG_SCOPES or org not in user.orgs:
            return _not_found()
        membership = {
            "state": user.orgs[org],
            "role": "member",
            "organization": {"login": org},
            "user": {"login": user.login, "id": user.id},
        }
        return _api(membership)

    async def _team_membership(self, request: Request) -> Response:
        caller = await self._caller("team_membership", request)
        if isinstance(caller, Response):
            return caller
        _, scopes = caller
        org, team = request.path_params["org"].lower(), request.path_params["team"].lower()
        member = self.users.get(request.path_params["username"].lower())
        if not scopes & _ORG_SCOPES or member is None or (org, team) not in member.teams:
            return _not_found()
        return _api({"role": "member", "state": "active"})

    async def _caller(self, endpoint: Endpoint, request: Request) -> tuple[FakeUser, frozenset[str]] | Response:
        """The user and scopes behind the request's token, or the answer GitHub would give instead."""
        if (faulted := await self._apply_fault(endpoint, request)) is not None:
            return faulted
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            return _api({"message": "Requires authentication", "documentation_url": _DOCS, "status": "401"}, 401)
        with self._lock:
            holder = self._tokens.get(token)
        user = self.users.get(holder[0]) if holder else None
        if holder is None or user is None:
            return _api({"message": "Bad credentials", "documentation_url": _DOCS, "status": "401"}, 401)
        return user, holder[1]

    async def _apply_fault(self, endpoint: Endpoint, request: Request) -> Response | None:
        """The scheduled fault's answer; None to answer normally (a slow call answers normally, late)."""
        with self._lock:
            queue = self._faults.get(endpoint, [])
            fault = queue.pop(0) if queue else None
        match fault:
            case None:
                return None
            case "server_error":
                return HTMLResponse("<h1>Unicorn!</h1><p>This page is taking too long to load.</p>", status_code=502)
            case "rate_limit":
                body = {"message": "API rate limit exceeded for user ID 1.", "documentation_url": _DOCS}
                return _api(body, 403, remaining=0)
            case "bad_verification_code":
                wants_json = "application/json" in request.headers.get("accept", "")
                return _token_error(wants_json, "bad_verification_code", "The code passed is incorrect or expired.")
            case "slow":
                # Answer late: after `slow_seconds`, or once the caller gives up and disconnects.
                await request.body()  # kept by the request for the handler
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.slow_seconds):
                        while (await request.receive())["type"] != "http.disconnect":
                            pass
                return None


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _back(redirect_uri: str, state: str | None, **params: str) -> RedirectResponse:
    if "error" in params:
        params["error_description"] = {
            "access_denied": "The user has denied your application access.",
            "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
        }[params["error"]]
        params["error_uri"] = f"https://docs.github.com/apps/oauth-apps#{params['error']}"
    query = urlencode({**params, **({"state": state} if state is not None else {})})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=302)


def _not_found() -> JSONResponse:
    return _api({"message": "Not Found", "documentation_url": _DOCS, "status": "404"}, 404)


def _api(body: object, status: int = 200, remaining: int = 4999) -> JSONResponse:
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(time.time()) + 3600),
        "X-RateLimit-Resource": "core",
        "X-GitHub-Media-Type": "github.v3; format=json",
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _token_error(wants_json: bool, error: str, description: str) -> Response:
    """GitHub answers token errors with 200 and the error in the body."""
    body = {"error": error, "error_description": description, "error_uri": _BAD_CODE_URI}
    if wants_json:
        return JSONResponse(body)
    return PlainTextResponse(urlencode(body), media_type="application/x-www-form-urlencoded")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><title>{html.escape(title)} · GitHub (fake)</title></head>"
        f"<body style='font-family:sans-serif;max-width:30rem;margin:3rem auto'><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>",
        status_code=status,
    )


def _sign_in_form(return_to: str) -> str:
    return (
        "<form method='post' action='/session'>"
        f"<input type='hidden' name='return_to' value='{html.escape(return_to, quote=True)}'>"
        "<label for='login'>Username</label> <input type='text' id='login' name='login' required>"
        "<p><button type='submit'>Sign in</button></p></form>"
    )


def _authorize_form(params: dict[str, str], login: str) -> str:
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k, quote=True)}' value='{html.escape(v, quote=True)}'>"
        for k, v in params.items()
        if k != "decision"
    )
    return (
        f"<p>Signed in as <strong>{html.escape(login)}</strong>. The application wants to read your profile, "
        f"email addresses and organization memberships.</p><form method='post' action='/login/oauth/authorize'>"
        f"{hidden}<button type='submit' name='decision' value='authorize'>Authorize</button> "
        "<button type='submit' name='decision' value='cancel'>Cancel</button></form>"
    )
