"""The account page: the clients a signed-in user authorized, each revocable; and signing out."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mcpgw_auth import account
from mcpgw_auth.oauth.errors import UserFacingError
from mcpgw_auth.records import Identity
from mcpgw_auth.web import browser
from mcpgw_auth.web.deps import Form, GatewayDep, Query
from mcpgw_auth.web.forms import single

router = APIRouter()

_NOTICES = {"revoked": "Access revoked. The application must ask you again before it can act for you."}


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def _when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


async def _signed_in_form(request: Request, gateway: GatewayDep, form: Form) -> Identity | None:
    """The user of a POST from this browser's account page; None when there is no session."""
    user = await browser.current_user(gateway, request)
    if user is not None and not browser.browser_csrf_ok(
        browser.browser_id(gateway, request), "account", single(form, "csrf")
    ):
        raise UserFacingError(
            "Request not accepted", "The form was not submitted from this browser's account page.", 403
        )
    return user


@router.get("/account")
async def account_page(request: Request, gateway: GatewayDep, query: Query) -> Response:
    user = await browser.current_user(gateway, request)
    if user is None:
        return _redirect(gateway.idp.login_url(None))
    bid = browser.browser_id_or_new(gateway, request)
    entries = await account.authorized_clients(gateway.store, user.subject)
    response = gateway.pages.render(
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
        csrf=browser.browser_csrf_token(bid, "account"),
    )
    browser.keep_browser_id(gateway, request, response, bid)
    return response


@router.post("/account/revoke")
async def revoke(request: Request, gateway: GatewayDep, form: Form) -> Response:
    user = await _signed_in_form(request, gateway, form)
    if user is None:
        return _redirect("/account")
    client_id = single(form, "client_id") or ""
    if not 0 < len(client_id) <= 128:
        raise UserFacingError("Invalid request", "Choose an application to revoke.")
    await account.revoke_client_access(gateway.store, gateway.grants, user.subject, client_id, gateway.now())
    return _redirect("/account?notice=revoked")


@router.post("/account/logout")
async def logout(request: Request, gateway: GatewayDep, form: Form) -> Response:
    user = await _signed_in_form(request, gateway, form)
    response = gateway.pages.render("signed_out.html", username=user.username if user else None)
    await browser.end_session(gateway, request, response)
    return response
