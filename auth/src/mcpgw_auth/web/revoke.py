"""RFC 7009 token revocation: the caller's own refresh tokens (whole grant) and access tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.web.deps import AuthenticatedClient, Form, Now, TokensDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import single

router = APIRouter()


@router.post("/revoke")
async def revoke(tokens: TokensDep, form: Form, client: AuthenticatedClient, now: Now) -> Response:
    token = single(form, "token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    await tokens.revoke(client, token, now)
    # A token of another client is left alone and the answer is the same 200 (RFC 7009 §2.2), so the endpoint
    # reveals nothing about tokens that are not the caller's.
    return Response(status_code=200, headers=NO_STORE)
