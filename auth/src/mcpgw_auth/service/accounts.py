"""A user's grants seen per client, and their revocation: what the account page and the admin commands share.

Revoking a client for a user ends its grants (refresh tokens and the access tokens issued from them, published on
the revocation feed so every replica refuses them) and forgets the remembered consent, so the next authorization
asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcpgw_auth.records import Client, Family, GrantUse
from mcpgw_auth.service.revocations import Revocations
from mcpgw_auth.store import Store


@dataclass(frozen=True)
class AuthorizedClient:
    client_id: str
    client_name: str | None
    redirect_hosts: tuple[str, ...]
    scopes: tuple[str, ...]
    resources: tuple[str | None, ...]  # None: every resource of the gateway (a request without `resource`)
    first_used: int
    last_used: int
    grants: int


def redirect_host(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.netloc or f"{parts.scheme}:"


def summarize(families: list[Family], clients: dict[str, Client], uses: list[GrantUse]) -> list[AuthorizedClient]:
    """One entry per client with a live grant, most recently used first."""
    by_client: dict[str, list[Family]] = {}
    for family in families:
        by_client.setdefault(family.client_id, []).append(family)
    used = {use.client_id: use for use in uses}
    summary = []
    for client_id, owned in by_client.items():
        client = clients.get(client_id)  # None: the registration expired while a grant lives on
        use = used.get(client_id)
        uris = client.metadata.redirect_uris if client else ()
        summary.append(
            AuthorizedClient(
                client_id=client_id,
                client_name=client.metadata.client_name if client else None,
                redirect_hosts=tuple(dict.fromkeys(redirect_host(uri) for uri in uris)),
                scopes=tuple(dict.fromkeys(scope for family in owned for scope in family.scopes)),
                resources=tuple(dict.fromkeys(family.resource for family in owned)),
                first_used=use.first_used if use else min(family.created_at for family in owned),
                last_used=use.last_used if use else max(family.created_at for family in owned),
                grants=len(owned),
            )
        )
    return sorted(summary, key=lambda entry: (-entry.last_used, entry.client_id))


@dataclass(frozen=True)
class UserSummary:
    subject: str
    logins: tuple[str, ...]
    grants: int
    clients: int
    last_used: int | None


class Accounts:
    def __init__(self, store: Store, revocations: Revocations) -> None:
        self._store = store
        self._revocations = revocations

    async def families(self, subject: str) -> list[Family]:
        families = [
            await self._store.get_family(family_id) for family_id in await self._store.families_of_user(subject)
        ]
        return [family for family in families if family is not None]

    async def authorized_clients(self, subject: str) -> list[AuthorizedClient]:
        families = await self.families(subject)
        clients = {}
        for client_id in {family.client_id for family in families}:
            client = await self._store.get_client(client_id)
            if client is not None:
                clients[client_id] = client
        return summarize(families, clients, await self._store.grant_uses(subject))

    async def revoke_client_access(self, subject: str, client_id: str, now: int) -> int:
        """End `subject`'s grants to `client_id` and forget the consent; return how many grants ended."""
        families = await self.families(subject)
        ended = [family.family_id for family in families if family.client_id == client_id]
        for family_id in ended:
            await self._revocations.revoke_family(family_id, now)
        await self._store.forget_consents(subject, client_id)
        await self._store.forget_grant_use(subject, client_id)
        if len(ended) == len(families):  # nothing left that a membership re-check could be needed for
            await self._store.delete_upstream_token(subject)
        return len(ended)

    async def revoke_user(self, subject: str, now: int) -> int:
        """End every grant of `subject` and forget every consent they gave; return how many grants ended."""
        client_ids = {family.client_id for family in await self.families(subject)}
        client_ids |= {use.client_id for use in await self._store.grant_uses(subject)}
        ended = 0
        for client_id in sorted(client_ids):
            ended += await self.revoke_client_access(subject, client_id, now)
        await self._store.delete_upstream_token(subject)
        return ended

    async def users(self) -> list[UserSummary]:
        """Every user holding grants, with the logins seen on them and their last use."""
        summaries = []
        for subject in await self._store.users_with_grants():
            families = await self.families(subject)
            uses = await self._store.grant_uses(subject)
            summaries.append(
                UserSummary(
                    subject=subject,
                    logins=tuple(sorted({family.identity.username for family in families})),
                    grants=len(families),
                    clients=len({family.client_id for family in families}),
                    last_used=max((use.last_used for use in uses), default=None),
                )
            )
        return summaries

    async def subjects_with_login(self, login: str) -> set[str]:
        """The subjects of users holding grants under `login` (GitHub logins are case-insensitive)."""
        found = set()
        for subject in await self._store.users_with_grants():
            if any(family.identity.username.lower() == login.lower() for family in await self.families(subject)):
                found.add(subject)
        return found

    async def grant_count(self) -> int:
        return sum([len(await self._store.families_of_user(s)) for s in await self._store.users_with_grants()])
