"""The consent page: no code is issued to a client the user has not approved here (MCP confused-deputy rule)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.oauth.urls import is_loopback_host
from mcpgw_auth.web.browser import csrf_ok, csrf_token
from mcpgw_auth.web.deps import AuthorizationsDep, BrowserDep, Form, Now, PagesDep, Query
from mcpgw_auth.web.forms import single
from mcpgw_auth.web.pages import form_target, see_other

router = APIRouter()


@router.get("/consent")
async def consent_page(
    request: Request, authorizations: AuthorizationsDep, browser: BrowserDep, pages: PagesDep, query: Query, now: Now
) -> Response:
    pending, client = await authorizations.pending(single(query, "request"))
    user = await browser.current_user(request)
    if user is None:
        return see_other(browser.login_url(pending.request_id))
    if await authorizations.consented(user, pending):
        return see_other(await authorizations.approve(user, pending, client, remember=False, now=now))
    bid = browser.id_or_new(request)
    answer_host = urlsplit(pending.redirect_uri).hostname
    response = pages.render(
        "consent.html",
        form_targets=(form_target(pending.redirect_uri),),
        client_name=client.metadata.client_name or "Unnamed application",
        client_id=client.client_id,
        # A client ID URL: who controls its host chose the name above (MCP security considerations, CIMD).
        client_host=urlsplit(client.client_id).hostname if client.from_document else None,
        loopback_redirect=client.from_document and answer_host is not None and is_loopback_host(answer_host),
        redirect_host=urlsplit(pending.redirect_uri).netloc or pending.redirect_uri,
        scopes=" ".join(pending.scopes),
        resource=pending.resource or "all MCP services of this gateway",
        username=user.username,
        request_id=pending.request_id,
        csrf=csrf_token(pending, bid, "consent"),
    )
    browser.keep_id(request, response, bid)
    return response


@router.post("/consent")
async def consent_decision(
    request: Request, authorizations: AuthorizationsDep, browser: BrowserDep, form: Form, now: Now
) -> Response:
    pending, client = await authorizations.pending(single(form, "request"))
    user = await browser.current_user(request)
    if user is None:
        return see_other(browser.login_url(pending.request_id))
    if not csrf_ok(pending, browser.id(request), "consent", single(form, "csrf")):
        raise UserFacingError(
            "Request not accepted", "The form was not submitted from this browser's consent page.", 403
        )
    decision = single(form, "decision")
    if decision == "allow":
        return see_other(await authorizations.approve(user, pending, client, remember=True, now=now))
    if decision == "deny":
        denied = OAuthError("access_denied", "the user denied the request")  # RFC 6749 §4.1.2.1
        return see_other(await authorizations.refuse(pending, denied))
    raise UserFacingError("Invalid request", "Choose Allow or Deny.")
