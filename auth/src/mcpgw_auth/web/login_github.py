"""The GitHub login's routes (idp/github.py does the talking to GitHub).

GET /login/github sends the browser to GitHub with a single-use `state` bound to this browser and to the pending
authorization request (or to the account page); GET /login/github/callback completes the sign-in and starts a
session. Any failure ends in an RFC 6749 error redirect to the client when the pending request is known, else in an
error page.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mcpgw_auth.idp.github import CALLBACK_PATH
from mcpgw_auth.idp.github_api import UpstreamError
from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.web.deps import AuthorizationsDep, BrowserDep, GitHubLoginDep, Now, Query, SessionsDep
from mcpgw_auth.web.forms import FormData
from mcpgw_auth.web.pages import see_other

log = logging.getLogger("mcpgw_auth.github")

LOGIN_PATH = "/login/github"

_TITLES = {
    "denied": "Sign-in cancelled",
    "not_allowed": "Not allowed",
    "timeout": "GitHub is unavailable",
    "unavailable": "GitHub is unavailable",
    "rate_limited": "GitHub is unavailable",
}

router = APIRouter()


def _param(query: FormData, name: str, max_length: int = 512) -> str | None:
    values = query.get(name, [])
    if len(values) > 1 or (values and len(values[0]) > max_length):
        raise UserFacingError("Invalid request", f"The {name} parameter is malformed.")
    return values[0] if values else None


@router.get(LOGIN_PATH)
async def start(
    request: Request,
    idp: GitHubLoginDep,
    authorizations: AuthorizationsDep,
    browser: BrowserDep,
    sessions: SessionsDep,
    query: Query,
    now: Now,
) -> Response:
    request_id = _param(query, "request", 64)
    if request_id is not None:
        await authorizations.pending(request_id)
    bid = browser.id_or_new(request)
    state, verifier = await sessions.begin_login(request_id, bid, now)
    response = see_other(await idp.begin(state, verifier), status=302)
    browser.keep_id(request, response, bid)
    return response


@router.get(CALLBACK_PATH)
async def callback(
    request: Request,
    idp: GitHubLoginDep,
    authorizations: AuthorizationsDep,
    browser: BrowserDep,
    sessions: SessionsDep,
    query: Query,
) -> Response:
    login = await sessions.finish_login(_param(query, "state", 128), browser.id(request))
    pending = None
    if login.request_id is not None:
        pending, _ = await authorizations.pending(login.request_id)
    try:
        identity = await idp.complete(_param(query, "error", 100), _param(query, "code"), login.code_verifier)
    except UpstreamError as exc:
        log.warning("GitHub sign-in failed", extra={"reason": exc.failure})
        if pending is None:
            raise UserFacingError(_TITLES.get(exc.failure, "Sign-in failed"), exc.detail, exc.status) from None
        # RFC 6749 §4.1.2.1, with `iss` (RFC 9207)
        return see_other(await authorizations.refuse(pending, OAuthError(exc.error_code, exc.detail)))
    target = "/account" if pending is None else f"/consent?request={quote(pending.request_id)}"
    response = see_other(target)  # MCP confused-deputy rule: our own consent page comes next
    await browser.start_session(response, identity)
    return response
