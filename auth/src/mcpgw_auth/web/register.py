"""RFC 7591 dynamic client registration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.registration import metadata_json
from mcpgw_auth.records import Client
from mcpgw_auth.web.deps import ClientsDep, Now, SettingsDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import read_json

router = APIRouter()


def client_response(issuer: str, client: Client, secret: str | None, registration_token: str | None) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the metadata plus credentials."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        **metadata_json(client.metadata),
        "registration_client_uri": f"{issuer}/register/{client.client_id}",
    }
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: 0 = does not expire
    if registration_token is not None:
        body["registration_access_token"] = registration_token
    return body


@router.post("/register")
async def register(request: Request, clients: ClientsDep, settings: SettingsDep, now: Now) -> JSONResponse:
    registered = await clients.register(await read_json(request), now)
    body = client_response(settings.issuer, registered.client, registered.secret, registered.registration_token)
    return JSONResponse(body, status_code=201, headers=NO_STORE)
