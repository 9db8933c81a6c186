"""Administration commands: clients, users and their grants, counts.

They read the service's AUTH_* settings and work through the Store interface on the service's Redis; revocations go
through Grants, which publishes them on the revocation feed, so every running replica refuses the tokens within a
second, exactly as when the revocation comes from the web.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mcpgw_auth import account
from mcpgw_auth.grants import Grants
from mcpgw_auth.records import Client
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.store.redis import RedisStore
from mcpgw_auth.verification import KeyManager, RevocationList

T = TypeVar("T")


def _safe(value: object) -> Text:
    """Client-supplied text as inert text: no rich markup, no terminal control sequences."""
    return Text("".join(ch if ch.isprintable() else "\ufffd" for ch in str(value)))


def _when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


@dataclass
class Admin:
    settings: Settings
    store: Store
    console: Console

    def grants(self) -> Grants:
        """Revocations are published like the web's. Grants holds the signing keys (it also mints tokens), so the
        commands run where the service's AUTH_KEY_DIR is, as `rotate-keys` does."""
        try:
            keys = KeyManager(self.settings.key_dir, self.settings.access_token_ttl)
        except (RuntimeError, OSError) as exc:
            typer.echo(f"cannot read the signing keys in AUTH_KEY_DIR: {exc}", err=True)
            raise typer.Exit(1) from None
        return Grants(self.settings, self.store, keys, RevocationList())

    async def subject(self, user: str) -> str:
        """A subject as given (`github:583231`), or the subject of the user holding grants under that login."""
        if ":" in user:
            return user
        found = set()
        for subject in await self.store.users_with_grants():
            families = await account.user_families(self.store, subject)
            if any(family.identity.username.lower() == user.lower() for family in families):
                found.add(subject)
        if len(found) != 1:
            problem = "no user with grants has" if not found else "several users have"
            raise typer.BadParameter(f"{problem} the login {user!r}; give the subject (e.g. github:583231)")
        return found.pop()


def _run(load_settings: Callable[[], Settings], action: Callable[[Admin], Awaitable[T]]) -> T:
    settings = load_settings()
    if settings.redis_url is None:
        typer.echo("AUTH_REDIS_URL is not set: the admin commands work on the Redis the service uses.", err=True)
        raise typer.Exit(2)
    url = settings.redis_url.get_secret_value()

    async def main() -> T:
        store = RedisStore.from_url(url)
        try:
            if not await store.ping():
                typer.echo("cannot reach Redis at AUTH_REDIS_URL", err=True)
                raise typer.Exit(1)
            return await action(Admin(settings, store, Console(highlight=False)))
        finally:
            await store.close()

    return asyncio.run(main())


def _client_row(client: Client, grants: int) -> list[Text]:
    return [
        _safe(client.client_id),
        _safe(client.metadata.client_name or "-"),
        _safe(", ".join(account.redirect_host(uri) for uri in client.metadata.redirect_uris)),
        _safe(client.metadata.token_endpoint_auth_method),
        _safe(_when(client.issued_at)),
        _safe("yes" if client.used else "no"),
        _safe(grants),
    ]


def register(cli: typer.Typer, load_settings: Callable[[], Settings]) -> None:
    """Add the `clients`, `users`, `tokens` and `counts` commands to the `mcpgw-auth` command line."""
    clients = typer.Typer(help="Registered OAuth clients.", no_args_is_help=True)
    users = typer.Typer(help="Users holding grants.", no_args_is_help=True)
    tokens = typer.Typer(
        help="A user's grants (refresh tokens and the access tokens issued from them).", no_args_is_help=True
    )

    @clients.command("list")
    def list_clients() -> None:
        """Every registered client, oldest first."""

        async def action(admin: Admin) -> None:
            table = Table("client id", "name", "redirect hosts", "auth method", "registered", "used", "grants")
            for client in await admin.store.list_clients():
                grants = len(await admin.store.families_of_client(client.client_id))
                table.add_row(*_client_row(client, grants))
            admin.console.print(table)

        _run(load_settings, action)

    @clients.command("show")
    def show_client(client_id: str) -> None:
        """One client's registration."""

        async def action(admin: Admin) -> None:
            client = await admin.store.get_client(client_id)
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
            table.add_row("grants", str(len(await admin.store.families_of_client(client_id))))
            admin.console.print(table)

        _run(load_settings, action)

    @clients.command("delete")
    def delete_client(
        client_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False
    ) -> None:
        """Delete a client and revoke every token issued to it."""
        if not yes:
            typer.confirm(f"Delete client {client_id} and revoke all its tokens?", abort=True)

        async def action(admin: Admin) -> None:
            if await admin.store.get_client(client_id) is None:
                typer.echo(f"no client {client_id}", err=True)
                raise typer.Exit(1)
            await admin.grants().revoke_client(client_id, int(time.time()))  # as RFC 7592 §2.3 DELETE does
            await admin.store.delete_client(client_id)
            admin.console.print(f"deleted client {client_id}; its tokens are revoked")

        _run(load_settings, action)

    @users.command("list")
    def list_users() -> None:
        """Users holding grants, with their login and last use."""

        async def action(admin: Admin) -> None:
            table = Table("subject", "login", "grants", "clients", "last used")
            for subject in await admin.store.users_with_grants():
                families = await account.user_families(admin.store, subject)
                uses = await admin.store.grant_uses(subject)
                logins = sorted({family.identity.username for family in families})
                last = max((use.last_used for use in uses), default=None)
                table.add_row(
                    _safe(subject),
                    _safe(", ".join(logins) or "-"),
                    str(len(families)),
                    str(len({family.client_id for family in families})),
                    _when(last) if last is not None else "-",
                )
            admin.console.print(table)

        _run(load_settings, action)

    @tokens.command("list")
    def list_tokens(user: Annotated[str, typer.Argument(help="Subject (github:583231) or login.")]) -> None:
        """A user's grants, per client."""

        async def action(admin: Admin) -> None:
            subject = await admin.subject(user)
            table = Table("client id", "name", "scopes", "resources", "grants", "first used", "last used")
            for entry in await account.authorized_clients(admin.store, subject):
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

        _run(load_settings, action)

    @tokens.command("revoke")
    def revoke_tokens(
        user: Annotated[str, typer.Argument(help="Subject (github:583231) or login.")],
        client_id: Annotated[str | None, typer.Option("--client", help="Only this client's grants.")] = None,
    ) -> None:
        """Revoke a user's grants (all, or one client's) and forget the consent they gave."""

        async def action(admin: Admin) -> None:
            subject, now = await admin.subject(user), int(time.time())
            if client_id is None:
                ended = await account.revoke_user(admin.store, admin.grants(), subject, now)
            else:
                ended = await account.revoke_client_access(admin.store, admin.grants(), subject, client_id, now)
            admin.console.print(f"revoked {ended} grant(s) of {subject}")

        _run(load_settings, action)

    @cli.command("counts")
    def counts() -> None:
        """How many clients, users with grants, and grants there are."""

        async def action(admin: Admin) -> None:
            all_clients = await admin.store.list_clients()
            subjects = await admin.store.users_with_grants()
            grants = sum([len(await admin.store.families_of_user(subject)) for subject in subjects])
            table = Table("what", "count")
            table.add_row("clients", str(len(all_clients)))
            table.add_row("clients used", str(sum(client.used for client in all_clients)))
            table.add_row("users with grants", str(len(subjects)))
            table.add_row("grants", str(grants))
            admin.console.print(table)

        _run(load_settings, action)

    cli.add_typer(clients, name="clients")
    cli.add_typer(users, name="users")
    cli.add_typer(tokens, name="tokens")
