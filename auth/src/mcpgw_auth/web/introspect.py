"""RFC 7662 token introspection, for the caller's own tokens only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.web.deps import AuthenticatedClient, Form, GatewayDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import single

router = APIRouter()

INACTIVE = {"active": False}


@router.post("/introspect")
async def introspect(gateway: GatewayDep, form: Form, client: AuthenticatedClient) -> JSONResponse:
    token = single(form, "token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    body: dict[str, Any] = INACTIVE
    if len(token) > 8192:
        pass
    elif token.count(".") == 2:
        try:
            claims = gateway.verifier.verify(token, gateway.now())
        except OAuthError:
            claims = None
        if claims is not None and claims.client_id == client.client_id:
            audience = sorted(claims.audience)
            body = {  # RFC 7662 §2.2
                "active": True,
                "token_type": "Bearer",
                "scope": claims.scope,
                "client_id": claims.client_id,
                "username": claims.username,
                "sub": claims.subject,
                "aud": audience[0] if len(audience) == 1 else audience,
                "iss": gateway.settings.issuer,
                "exp": claims.expires_at,
                "iat": claims.issued_at,
                "jti": claims.jti,
            }
    else:
        family = await gateway.store.get_refresh(secrets.digest(token))
        if family is not None and family.client_id == client.client_id:
            body = {
                "active": True,
                "token_type": "refresh_token",
                "scope": " ".join(family.scopes),
                "client_id": family.client_id,
                "username": family.identity.username,
                "sub": family.identity.subject,
                "iss": gateway.settings.issuer,
            }
            if family.resource:
                body["aud"] = family.resource
    # Another client's token, or none at all: inactive, without saying which (RFC 7662 §2.2).
    return JSONResponse(body, headers=NO_STORE)
