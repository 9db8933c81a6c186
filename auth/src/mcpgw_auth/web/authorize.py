"""The authorization endpoint (RFC 6749 §3.1, §4.1.1): validate, park the request, send the browser to login or
consent."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.authorize import parse_authorization_request, resolve_client_redirect
from mcpgw_auth.web import browser
from mcpgw_auth.web.deps import GatewayDep, Query

router = APIRouter()


@router.get("/authorize")
async def authorize(request: Request, gateway: GatewayDep, query: Query) -> RedirectResponse:
    settings = gateway.settings
    client_ids = query.get("client_id", [])
    lookup = client_ids[0] if len(client_ids) == 1 and 0 < len(client_ids[0]) <= 128 else None
    client = await gateway.store.get_client(lookup) if lookup else None
    client, redirect_uri = resolve_client_redirect(query, client)
    pending = parse_authorization_request(
        query,
        client,
        redirect_uri,
        resources=frozenset(settings.resources),
        require_resource=settings.require_resource,
        scopes_supported=frozenset(settings.scopes_supported),
        default_scopes=tuple(settings.default_scopes),
        request_id=secrets.new_secret(),
        csrf=secrets.new_secret(),
        now=gateway.now(),
    )
    await gateway.store.save_auth_request(pending, settings.auth_request_ttl)
    user = await browser.current_user(gateway, request)
    if user is None:
        location = gateway.idp.login_url(pending.request_id)
    else:
        location = f"/consent?request={quote(pending.request_id)}"
    response = RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
    browser.keep_browser_id(gateway, request, response, browser.browser_id_or_new(gateway, request))
    return response
