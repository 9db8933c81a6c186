"""FastAPI dependencies as named Annotated aliases, so handler signatures read like prose. Each names one part the
app was built with (app.py puts them on `app.state`); a handler asks only for the parts it uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from mcpgw_auth.idp.dev import DevIdentityProvider
from mcpgw_auth.idp.github import GitHubIdentityProvider
from mcpgw_auth.keys import KeyManager
from mcpgw_auth.oauth import client_auth
from mcpgw_auth.records import Client
from mcpgw_auth.service.accounts import Accounts
from mcpgw_auth.service.authorization import Authorizations
from mcpgw_auth.service.clients import Clients
from mcpgw_auth.service.health import Health
from mcpgw_auth.service.sessions import Sessions
from mcpgw_auth.service.tokens import Tokens
from mcpgw_auth.settings import Settings
from mcpgw_auth.web.browser import Browser
from mcpgw_auth.web.forms import FormData, query_params, read_form
from mcpgw_auth.web.pages import Pages


def _part(name: str) -> Any:
    # Async dependencies run on the event loop; plain `def` ones would each cost a worker-thread hop.
    async def part(request: Request) -> Any:
        return getattr(request.app.state, name)

    return Depends(part)


async def _now(request: Request) -> int:
    return int(request.app.state.clock())


async def _form(request: Request) -> FormData:
    return await read_form(request)


async def _query(request: Request) -> FormData:
    return query_params(request)


async def _authenticated_client(request: Request, form: Annotated[FormData, Depends(_form)]) -> Client:
    """RFC 6749 §2.3 client authentication, shared by /token, /revoke and /introspect."""
    clients: Clients = request.app.state.clients
    return await clients.authenticate(client_auth.credentials(request.headers.get("authorization"), form))


SettingsDep = Annotated[Settings, _part("settings")]
PagesDep = Annotated[Pages, _part("pages")]
BrowserDep = Annotated[Browser, _part("browser")]
SessionsDep = Annotated[Sessions, _part("sessions")]
KeysDep = Annotated[KeyManager, _part("keys")]
HealthDep = Annotated[Health, _part("health")]
ClientsDep = Annotated[Clients, _part("clients")]
AuthorizationsDep = Annotated[Authorizations, _part("authorizations")]
TokensDep = Annotated[Tokens, _part("tokens")]
AccountsDep = Annotated[Accounts, _part("accounts")]
DevLoginDep = Annotated[DevIdentityProvider, _part("idp")]
GitHubLoginDep = Annotated[GitHubIdentityProvider, _part("idp")]
Now = Annotated[int, Depends(_now)]
Form = Annotated[FormData, Depends(_form)]
Query = Annotated[FormData, Depends(_query)]
AuthenticatedClient = Annotated[Client, Depends(_authenticated_client)]
