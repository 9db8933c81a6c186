"""The consent page: no code is issued to a client the user has not approved here (MCP confused-deputy rule)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.oauth.authorize import code_redirect, error_redirect
from mcpgw_auth.oauth.consent import consent_key
from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.records import AuthRequest, Client, Identity
from mcpgw_auth.web import browser
from mcpgw_auth.web.deps import Form, GatewayDep, Query
from mcpgw_auth.web.forms import single
from mcpgw_auth.web.pages import form_target

router = APIRouter()

EXPIRED = UserFacingError("Sign-in expired", "This authorization request is unknown or has expired.")


async def pending_request(gateway: Gateway, request_id: str | None) -> tuple[AuthRequest, Client]:
    pending = await gateway.store.get_auth_request(request_id) if request_id and len(request_id) <= 64 else None
    client = await gateway.store.get_client(pending.client_id) if pending else None
    if pending is None or client is None:
        raise EXPIRED
    return pending, client


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


async def _issue(gateway: Gateway, pending: AuthRequest, client: Client, user: Identity) -> RedirectResponse:
    taken = await gateway.store.take_auth_request(pending.request_id)  # decided once, even under double submit
    if taken is None:
        raise EXPIRED
    code = await gateway.grants.issue_code(
        client, user, taken.redirect_uri, taken.code_challenge, taken.scopes, taken.resource, gateway.now()
    )
    return _redirect(code_redirect(taken.redirect_uri, code, taken.state, gateway.settings.issuer))


def _key(user: Identity, pending: AuthRequest) -> str:
    return consent_key(user.subject, pending.client_id, pending.scopes, pending.resource)


@router.get("/consent")
async def consent_page(request: Request, gateway: GatewayDep, query: Query) -> Response:
    pending, client = await pending_request(gateway, single(query, "request"))
    user = await browser.current_user(gateway, request)
    if user is None:
        return _redirect(gateway.idp.login_url(pending.request_id))
    if await gateway.store.has_consent(_key(user, pending)):
        return await _issue(gateway, pending, client, user)
    bid = browser.browser_id_or_new(gateway, request)
    response = gateway.pages.render(
        "consent.html",
        form_targets=(form_target(pending.redirect_uri),),
        client_name=client.metadata.client_name or "Unnamed application",
        client_id=client.client_id,
        redirect_host=urlsplit(pending.redirect_uri).netloc or pending.redirect_uri,
        scopes=" ".join(pending.scopes),
        resource=pending.resource or "all MCP services of this gateway",
        username=user.username,
        request_id=pending.request_id,
        csrf=browser.csrf_token(pending, bid, "consent"),
    )
    browser.keep_browser_id(gateway, request, response, bid)
    return response


@router.post("/consent")
async def consent_decision(request: Request, gateway: GatewayDep, form: Form) -> Response:
    pending, client = await pending_request(gateway, single(form, "request"))
    user = await browser.current_user(gateway, request)
    if user is None:
        return _redirect(gateway.idp.login_url(pending.request_id))
    if not browser.csrf_ok(pending, browser.browser_id(gateway, request), "consent", single(form, "csrf")):
        raise UserFacingError(
            "Request not accepted", "The form was not submitted from this browser's consent page.", 403
        )
    decision = single(form, "decision")
    if decision == "allow":
        await gateway.store.save_consent(
            _key(user, pending), gateway.settings.consent_ttl, subject=user.subject, client_id=pending.client_id
        )
        return await _issue(gateway, pending, client, user)
    if decision == "deny":
        if await gateway.store.take_auth_request(pending.request_id) is None:
            raise EXPIRED
        denied = OAuthError("access_denied", "the user denied the request")  # RFC 6749 §4.1.2.1
        return _redirect(error_redirect(pending.redirect_uri, denied, pending.state, gateway.settings.issuer))
    raise UserFacingError("Invalid request", "Choose Allow or Deny.")
