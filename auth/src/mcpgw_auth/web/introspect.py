"""RFC 7662 token introspection, for the caller's own tokens only."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.web.deps import AuthenticatedClient, Form, Now, TokensDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import single

router = APIRouter()


@router.post("/introspect")
async def introspect(tokens: TokensDep, form: Form, client: AuthenticatedClient, now: Now) -> JSONResponse:
    token = single(form, "token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    return JSONResponse(await tokens.introspect(client, token, now), headers=NO_STORE)
