"""RFC 7592 client configuration endpoint: read, update and delete with the registration access token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.records import Client
from mcpgw_auth.web.deps import GatewayDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import read_json
from mcpgw_auth.web.register import client_response, validate

router = APIRouter()

_UNAUTHORIZED = OAuthError("invalid_token", "a valid registration access token is required", status=401)


async def _authorized_client(gateway: Gateway, request: Request, client_id: str) -> Client:
    """RFC 7592 §3: a bad token, or a client that is not there, is 401 (no hint whether the client exists)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    client = await gateway.store.get_client(client_id) if token and len(client_id) <= 128 else None
    if client is None or not secrets.matches(token, client.registration_token_hash):
        raise _UNAUTHORIZED
    return client


def _unauthorized_response() -> JSONResponse:
    return JSONResponse(
        _UNAUTHORIZED.to_json(),
        status_code=401,
        headers={**NO_STORE, "WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@router.get("/register/{client_id}")
async def read_client(client_id: str, request: Request, gateway: GatewayDep) -> JSONResponse:
    try:
        client = await _authorized_client(gateway, request, client_id)
    except OAuthError:
        return _unauthorized_response()
    return JSONResponse(client_response(gateway, client, None, None), headers=NO_STORE)


@router.put("/register/{client_id}")
async def update_client(client_id: str, request: Request, gateway: GatewayDep) -> JSONResponse:
    try:
        client = await _authorized_client(gateway, request, client_id)
    except OAuthError:
        return _unauthorized_response()
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("client_id") != client_id:
        raise OAuthError("invalid_client_metadata", "the body must carry the client's client_id")  # RFC 7592 §2.2
    if "client_secret" in body and (
        client.client_secret_hash is None or not secrets.matches(str(body["client_secret"]), client.client_secret_hash)
    ):
        raise OAuthError("invalid_client_metadata", "client_secret does not match")  # RFC 7592 §2.2
    metadata = validate(gateway, body)
    if (metadata.token_endpoint_auth_method == "none") != (client.client_secret_hash is None):
        raise OAuthError(
            "invalid_client_metadata",
            "token_endpoint_auth_method cannot switch between public and confidential",
        )
    updated = client.model_copy(update={"metadata": metadata})
    ttl = gateway.settings.client_idle_ttl if client.used else gateway.settings.unused_client_ttl
    await gateway.store.save_client(updated, ttl)
    return JSONResponse(client_response(gateway, updated, None, None), headers=NO_STORE)


@router.delete("/register/{client_id}")
async def delete_client(client_id: str, request: Request, gateway: GatewayDep) -> Response:
    try:
        await _authorized_client(gateway, request, client_id)
    except OAuthError:
        return _unauthorized_response()
    await gateway.grants.revoke_client(client_id, gateway.now())
    await gateway.store.delete_client(client_id)
    return Response(status_code=204, headers=NO_STORE)  # RFC 7592 §2.3
