"""The authorization endpoint (RFC 6749 §3.1, §4.1.1): validate, park the request, send the browser to login or
consent."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from mcpgw_auth.web.deps import AuthorizationsDep, BrowserDep, Now, Query

router = APIRouter()


@router.get("/authorize")
async def authorize(
    request: Request, authorizations: AuthorizationsDep, browser: BrowserDep, query: Query, now: Now
) -> RedirectResponse:
    pending = await authorizations.start(query, now)
    if await browser.current_user(request) is None:
        location = browser.login_url(pending.request_id)
    else:
        location = f"/consent?request={quote(pending.request_id)}"
    response = RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
    browser.keep_id(request, response, browser.id_or_new(request))
    return response
