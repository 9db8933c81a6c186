"""RFC 7591 dynamic client registration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.registration import metadata_json, validate_metadata
from mcpgw_auth.records import Client
from mcpgw_auth.web.deps import GatewayDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import read_json

router = APIRouter()


def validate(gateway: Gateway, body: object) -> Any:
    settings = gateway.settings
    return validate_metadata(
        body,
        frozenset(settings.scopes_supported),
        frozenset(s.lower() for s in settings.allowed_redirect_schemes),
    )


def client_response(
    gateway: Gateway, client: Client, secret: str | None, registration_token: str | None
) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the metadata plus credentials."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        **metadata_json(client.metadata),
        "registration_client_uri": f"{gateway.settings.issuer}/register/{client.client_id}",
    }
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: 0 = does not expire
    if registration_token is not None:
        body["registration_access_token"] = registration_token
    return body


@router.post("/register")
async def register(request: Request, gateway: GatewayDep) -> JSONResponse:
    metadata = validate(gateway, await read_json(request))
    secret = None if metadata.token_endpoint_auth_method == "none" else secrets.new_secret()
    registration_token = secrets.new_secret()
    client = Client(
        client_id=secrets.new_secret(16),
        client_secret_hash=secrets.digest(secret) if secret else None,
        registration_token_hash=secrets.digest(registration_token),
        issued_at=gateway.now(),
        metadata=metadata,
    )
    # Registrations that are never used expire (`unused_client_ttl`); the first token grant extends them.
    await gateway.store.save_client(client, gateway.settings.unused_client_ttl)
    body = client_response(gateway, client, secret, registration_token)
    return JSONResponse(body, status_code=201, headers=NO_STORE)
