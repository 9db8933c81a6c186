"""The dev login's pages: a username form (idp/dev.py decides what a username may be)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mcpgw_auth.oauth.errors import UserFacingError
from mcpgw_auth.web.browser import browser_csrf_ok, browser_csrf_token, csrf_ok, csrf_token
from mcpgw_auth.web.deps import AuthorizationsDep, BrowserDep, DevLoginDep, Form, PagesDep, Query
from mcpgw_auth.web.forms import single
from mcpgw_auth.web.pages import form_target, see_other

LOGIN_PATH = "/login"

router = APIRouter()


@router.get(LOGIN_PATH)
async def login_page(
    request: Request, authorizations: AuthorizationsDep, browser: BrowserDep, pages: PagesDep, query: Query
) -> Response:
    bid = browser.id_or_new(request)
    request_id = single(query, "request")
    if request_id is None:  # signing in for the account page
        targets: tuple[str, ...] = ()
        csrf = browser_csrf_token(bid, "login")
    else:
        pending, _ = await authorizations.pending(request_id)
        targets, csrf = (form_target(pending.redirect_uri),), csrf_token(pending, bid, "login")
    response = pages.render("login_dev.html", form_targets=targets, request_id=request_id, csrf=csrf, error=None)
    browser.keep_id(request, response, bid)
    return response


@router.post(LOGIN_PATH)
async def login(
    request: Request, idp: DevLoginDep, authorizations: AuthorizationsDep, browser: BrowserDep, form: Form
) -> Response:
    bid, request_id, csrf = browser.id(request), single(form, "request"), single(form, "csrf")
    if request_id is None:
        valid, next_url = browser_csrf_ok(bid, "login", csrf), "/account"
    else:
        pending, _ = await authorizations.pending(request_id)
        valid = csrf_ok(pending, bid, "login", csrf)
        next_url = f"/consent?request={quote(pending.request_id)}"
    if not valid:
        raise UserFacingError("Request not accepted", "The form was not submitted from this browser.", 403)
    identity = idp.sign_in(single(form, "username") or "")
    response = see_other(next_url)
    await browser.start_session(response, identity)
    return response
