"""RFC 7592 client configuration endpoint: read, update and delete with the registration access token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from mcpgw_auth.records import Client
from mcpgw_auth.web.deps import ClientsDep, Now, SettingsDep
from mcpgw_auth.web.errors import NO_STORE
from mcpgw_auth.web.forms import read_json
from mcpgw_auth.web.register import client_response

router = APIRouter()


async def _managed_client(client_id: str, request: Request, clients: ClientsDep) -> Client:
    """RFC 7592 §3: the client named in the path, with the registration access token as a Bearer token."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    return await clients.managed(client_id, token)


ManagedClient = Annotated[Client, Depends(_managed_client)]


@router.get("/register/{client_id}")
async def read_client(client: ManagedClient, settings: SettingsDep) -> JSONResponse:
    return JSONResponse(client_response(settings.issuer, client, None, None), headers=NO_STORE)


@router.put("/register/{client_id}")
async def update_client(
    request: Request, client: ManagedClient, clients: ClientsDep, settings: SettingsDep
) -> JSONResponse:
    updated = await clients.update(client, await read_json(request))
    return JSONResponse(client_response(settings.issuer, updated, None, None), headers=NO_STORE)


@router.delete("/register/{client_id}")
async def delete_client(client: ManagedClient, clients: ClientsDep, now: Now) -> Response:
    await clients.delete(client.client_id, now)
    return Response(status_code=204, headers=NO_STORE)  # RFC 7592 §2.3
