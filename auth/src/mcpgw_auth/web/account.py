"""The account page: the clients a signed-in user authorized, each revocable; and signing out."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mcpgw_auth.oauth.errors import UserFacingError
from mcpgw_auth.records import Identity
from mcpgw_auth.web.browser import Browser, browser_csrf_ok, browser_csrf_token
from mcpgw_auth.web.deps import AccountsDep, BrowserDep, Form, Now, PagesDep, Query
from mcpgw_auth.web.forms import FormData, single
from mcpgw_auth.web.pages import see_other

router = APIRouter()

_NOTICES = {"revoked": "Access revoked. The application must ask you again before it can act for you."}


def _when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


async def _signed_in_form(request: Request, browser: Browser, form: FormData) -> Identity | None:
    """The user of a POST from this browser's account page; None when there is no session."""
    user = await browser.current_user(request)
    if user is not None and not browser_csrf_ok(browser.id(request), "account", single(form, "csrf")):
        raise UserFacingError(
            "Request not accepted", "The form was not submitted from this browser's account page.", 403
        )
    return user


@router.get("/account")
async def account_page(
    request: Request, accounts: AccountsDep, browser: BrowserDep, pages: PagesDep, query: Query
) -> Response:
    user = await browser.current_user(request)
    if user is None:
        return see_other(browser.login_url(None))
    bid = browser.id_or_new(request)
    entries = await accounts.authorized_clients(user.subject)
    response = pages.render(
        "account.html",
        user=user,
        clients=[
            {
                "client_id": entry.client_id,
                "name": entry.client_name or "Unnamed application",
                "redirect_hosts": ", ".join(entry.redirect_hosts) or "unknown (registration expired)",
                "scopes": " ".join(entry.scopes) or "none",
                "resources": [resource or "all MCP services of this gateway" for resource in entry.resources],
                "first_used": _when(entry.first_used),
                "last_used": _when(entry.last_used),
            }
            for entry in entries
        ],
        notice=_NOTICES.get(single(query, "notice") or ""),
        csrf=browser_csrf_token(bid, "account"),
    )
    browser.keep_id(request, response, bid)
    return response


@router.post("/account/revoke")
async def revoke(request: Request, accounts: AccountsDep, browser: BrowserDep, form: Form, now: Now) -> Response:
    user = await _signed_in_form(request, browser, form)
    if user is None:
        return see_other("/account")
    client_id = single(form, "client_id") or ""
    if not 0 < len(client_id) <= 128:
        raise UserFacingError("Invalid request", "Choose an application to revoke.")
    await accounts.revoke_client_access(user.subject, client_id, now)
    return see_other("/account?notice=revoked")


@router.post("/account/logout")
async def logout(request: Request, browser: BrowserDep, pages: PagesDep, form: Form) -> Response:
    user = await _signed_in_form(request, browser, form)
    response = pages.render("signed_out.html", username=user.username if user else None)
    await browser.end_session(request, response)
    return response
