"""FastAPI dependencies as named Annotated aliases, so handler signatures read like prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.oauth import client_auth
from mcpgw_auth.records import Client
from mcpgw_auth.web.forms import FormData, query_params, read_form


async def _gateway_dep(request: Request) -> Gateway:
    return _gateway(request)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _form(request: Request) -> FormData:
    return await read_form(request)


async def _query(request: Request) -> FormData:
    return query_params(request)


async def _authenticated_client(request: Request, form: Annotated[FormData, Depends(_form)]) -> Client:
    """RFC 6749 §2.3 client authentication, shared by /token, /revoke and /introspect."""
    gateway = _gateway(request)
    creds = client_auth.credentials(request.headers.get("authorization"), form)
    client = await gateway.store.get_client(creds.client_id) if len(creds.client_id) <= 128 else None
    return client_auth.authenticate(client, creds)


# Async dependencies run on the event loop; plain `def` ones would each cost a worker-thread hop.
GatewayDep = Annotated[Gateway, Depends(_gateway_dep)]
Form = Annotated[FormData, Depends(_form)]
Query = Annotated[FormData, Depends(_query)]
AuthenticatedClient = Annotated[Client, Depends(_authenticated_client)]
