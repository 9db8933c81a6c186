"""The token endpoint (RFC 6749 §3.2): authorization_code and refresh_token grants."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.token_request import AuthorizationCodeGrant, RefreshTokenGrant, parse_token_request
from mcpgw_auth.web.deps import AuthenticatedClient, Form, Now, TokensDep
from mcpgw_auth.web.errors import NO_STORE

router = APIRouter()


@router.post("/token")
async def token(tokens: TokensDep, form: Form, client: AuthenticatedClient, now: Now) -> JSONResponse:
    match parse_token_request(form):
        case AuthorizationCodeGrant() as grant:
            body = await tokens.exchange_code(client, grant, now)
        case RefreshTokenGrant() as grant:
            body = await tokens.refresh(client, grant, now)
    return JSONResponse(body, headers=NO_STORE)  # RFC 6749 §5.1: no-store
