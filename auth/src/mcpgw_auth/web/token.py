"""The token endpoint (RFC 6749 §3.2): authorization_code and refresh_token grants."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.token_request import AuthorizationCodeGrant, RefreshTokenGrant, parse_token_request
from mcpgw_auth.web.deps import AuthenticatedClient, Form, GatewayDep
from mcpgw_auth.web.errors import NO_STORE

router = APIRouter()


@router.post("/token")
async def token(gateway: GatewayDep, form: Form, client: AuthenticatedClient) -> JSONResponse:
    grant = parse_token_request(form)
    now = gateway.now()
    match grant:
        case AuthorizationCodeGrant():
            body = await gateway.grants.exchange_code(client, grant, now)
        case RefreshTokenGrant():
            if "refresh_token" not in client.metadata.grant_types:
                raise OAuthError("unauthorized_client", "the client did not register for refresh_token")
            body = await gateway.grants.refresh(client, grant, now)
    return JSONResponse(body, headers=NO_STORE)  # RFC 6749 §5.1: no-store
