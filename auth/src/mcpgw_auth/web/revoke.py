"""RFC 7009 token revocation: the caller's own refresh tokens (whole grant) and access tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.oauth import secrets, tokens
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.records import Client
from mcpgw_auth.web.deps import AuthenticatedClient, Form, GatewayDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import single

router = APIRouter()


async def _revoke_refresh(gateway: Gateway, client: Client, token: str) -> None:
    family = await gateway.store.get_refresh(secrets.digest(token))
    if family is not None and family.client_id == client.client_id:
        # RFC 7009 §2.1: revoking a refresh token also revokes the access tokens of the same grant.
        await gateway.grants.revoke_family(family.family_id, gateway.now())


async def _revoke_access(gateway: Gateway, client: Client, token: str) -> None:
    try:
        claims = tokens.decode(token, gateway.keys.keys, issuer=gateway.settings.issuer, now=gateway.now())
    except OAuthError:
        return  # RFC 7009 §2.2: invalid or expired tokens need no action
    if claims.client_id == client.client_id:
        await gateway.grants.revoke_access_tokens([(claims.jti, claims.expires_at)], gateway.now())


@router.post("/revoke")
async def revoke(gateway: GatewayDep, form: Form, client: AuthenticatedClient) -> Response:
    token = single(form, "token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    if len(token) <= 8192:
        # Access tokens are JWTs (three dot-separated parts); refresh tokens never contain a dot. The hint
        # is optional and only an optimisation (RFC 7009 §2.1), so the token's shape decides.
        if token.count(".") == 2:
            await _revoke_access(gateway, client, token)
        else:
            await _revoke_refresh(gateway, client, token)
    # A token of another client is left alone and the answer is the same 200 (RFC 7009 §2.2), so the endpoint
    # reveals nothing about tokens that are not the caller's.
    return Response(status_code=200, headers=NO_STORE)
