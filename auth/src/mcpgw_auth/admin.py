"""Administration commands: clients, users and their grants, counts.

They read the service's AUTH_* settings and work through the same services as the web, on the service's Redis;
revocations are published on the revocation feed, so every running replica refuses the tokens within a second,
exactly as when the revocation comes from the web.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mcpgw_auth.records import Client
from mcpgw_auth.service.accounts import Accounts, redirect_host
from mcpgw_auth.service.clients import Clients
from mcpgw_auth.service.revocations import Revocations
from mcpgw_auth.service.verification import RevocationList
from mcpgw_auth.settings import Settings
from mcpgw_auth.wiring import open_store

T = TypeVar("T")

clients_cli = typer.Typer(help="Registered OAuth clients.", no_args_is_help=True)
users_cli = typer.Typer(help="Users holding grants.", no_args_is_help=True)
tokens_cli = typer.Typer(
    help="A user's grants (refresh tokens and the access tokens issued from them).", no_args_is_help=True
)

UserArg = Annotated[str, typer.Argument(help="Subject (github:583231) or login.")]


def load_settings() -> Settings:
    """The AUTH_* settings, or exit 2 naming each variable that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "settings"
            typer.echo(f"configuration error: AUTH_{field.upper()}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@dataclass
class Admin:
    clients: Clients
    accounts: Accounts
    console: Console

    async def subject(self, user: str) -> str:
        """A subject as given (`github:583231`), or the subject of the user holding grants under that login."""
        if ":" in user:
            return user
        found = await self.accounts.subjects_with_login(user)
        if len(found) != 1:
            problem = "no user with grants has" if not found else "several users have"
            raise typer.BadParameter(f"{problem} the login {user!r}; give the subject (e.g. github:583231)")
        return found.pop()


def _run(action: Callable[[Admin], Awaitable[T]]) -> T:
    settings = load_settings()
    if settings.redis_url is None:
        typer.echo("AUTH_REDIS_URL is not set: the admin commands work on the Redis the service uses.", err=True)
        raise typer.Exit(2)

    async def main() -> T:
        store = open_store(settings)
        try:
            if not await store.ping():
                typer.echo("cannot reach Redis at AUTH_REDIS_URL", err=True)
                raise typer.Exit(1)
            revocations = Revocations(store, RevocationList(), settings.access_token_ttl)
            admin = Admin(Clients(settings, store, revocations), Accounts(store, revocations), Console(highlight=False))
            return await action(admin)
        finally:
            await store.close()

    return asyncio.run(main())


def _safe(value: object) -> Text:
    """Client-supplied text as inert text: no rich markup, no terminal control sequences."""
    return Text("".join(ch if ch.isprintable() else "\ufffd" for ch in str(value)))


def _when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _client_row(client: Client, grants: int) -> list[Text]:
    return [
        _safe(client.client_id),
        _safe(client.metadata.client_name or "-"),
        _safe(", ".join(redirect_host(uri) for uri in client.metadata.redirect_uris)),
        _safe(client.metadata.token_endpoint_auth_method),
        _safe(_when(client.issued_at)),
        _safe("yes" if client.used else "no"),
        _safe(grants),
    ]


@clients_cli.command("list")
def list_clients() -> None:
    """Every registered client, oldest first."""

    async def action(admin: Admin) -> None:
        table = Table("client id", "name", "redirect hosts", "auth method", "registered", "used", "grants")
        for client in await admin.clients.all():
            table.add_row(*_client_row(client, await admin.clients.grant_count(client.client_id)))
        admin.console.print(table)

    _run(action)


@clients_cli.command("show")
def show_client(client_id: str) -> None:
    """One client's registration."""

    async def action(admin: Admin) -> None:
        client = await admin.clients.get(client_id)
        if client is None:
            typer.echo(f"no client {client_id}", err=True)
            raise typer.Exit(1)
        table = Table("field", "value", show_header=False)
        table.add_row("client id", _safe(client.client_id))
        table.add_row("registered", _when(client.issued_at))
        table.add_row("used", "yes" if client.used else "no")
        for name, value in client.metadata.model_dump(exclude_none=True).items():
            shown = "\n".join(value) if isinstance(value, tuple | list) else value
            table.add_row(name.replace("_", " "), _safe(shown))
        table.add_row("grants", str(await admin.clients.grant_count(client_id)))
        admin.console.print(table)

    _run(action)


@clients_cli.command("delete")
def delete_client(
    client_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False
) -> None:
    """Delete a client and revoke every token issued to it."""
    if not yes:
        typer.confirm(f"Delete client {client_id} and revoke all its tokens?", abort=True)

    async def action(admin: Admin) -> None:
        if not await admin.clients.delete(client_id, int(time.time())):  # as RFC 7592 §2.3 DELETE does
            typer.echo(f"no client {client_id}", err=True)
            raise typer.Exit(1)
        admin.console.print(f"deleted client {client_id}; its tokens are revoked")

    _run(action)


@users_cli.command("list")
def list_users() -> None:
    """Users holding grants, with their login and last use."""

    async def action(admin: Admin) -> None:
        table = Table("subject", "login", "grants", "clients", "last used")
        for user in await admin.accounts.users():
            table.add_row(
                _safe(user.subject),
                _safe(", ".join(user.logins) or "-"),
                str(user.grants),
                str(user.clients),
                _when(user.last_used) if user.last_used is not None else "-",
            )
        admin.console.print(table)

    _run(action)


@tokens_cli.command("list")
def list_tokens(user: UserArg) -> None:
    """A user's grants, per client."""

    async def action(admin: Admin) -> None:
        subject = await admin.subject(user)
        table = Table("client id", "name", "scopes", "resources", "grants", "first used", "last used")
        for entry in await admin.accounts.authorized_clients(subject):
            table.add_row(
                _safe(entry.client_id),
                _safe(entry.client_name or "-"),
                _safe(" ".join(entry.scopes)),
                _safe("\n".join(resource or "(all)" for resource in entry.resources)),
                str(entry.grants),
                _when(entry.first_used),
                _when(entry.last_used),
            )
        admin.console.print(f"grants of {subject}")
        admin.console.print(table)

    _run(action)


@tokens_cli.command("revoke")
def revoke_tokens(
    user: UserArg,
    client_id: Annotated[str | None, typer.Option("--client", help="Only this client's grants.")] = None,
) -> None:
    """Revoke a user's grants (all, or one client's) and forget the consent they gave."""

    async def action(admin: Admin) -> None:
        subject, now = await admin.subject(user), int(time.time())
        if client_id is None:
            ended = await admin.accounts.revoke_user(subject, now)
        else:
            ended = await admin.accounts.revoke_client_access(subject, client_id, now)
        admin.console.print(f"revoked {ended} grant(s) of {subject}")

    _run(action)


def counts() -> None:
    """How many clients, users with grants, and grants there are."""

    async def action(admin: Admin) -> None:
        all_clients = await admin.clients.all()
        table = Table("what", "count")
        table.add_row("clients", str(len(all_clients)))
        table.add_row("clients used", str(sum(client.used for client in all_clients)))
        table.add_row("users with grants", str(len(await admin.accounts.users())))
        table.add_row("grants", str(await admin.accounts.grant_count()))
        admin.console.print(table)

    _run(action)
