"""OAuth clients: RFC 7591 registration, RFC 7592 management with the registration access token, and client
authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3)."""

from __future__ import annotations

from dataclasses import dataclass

from mcpgw_auth.oauth import client_auth, secrets
from mcpgw_auth.oauth.cimd import is_url_client_id
from mcpgw_auth.oauth.client_auth import ClientCredentials
from mcpgw_auth.oauth.errors import InvalidClient, OAuthError
from mcpgw_auth.oauth.registration import validate_metadata
from mcpgw_auth.records import Client, ClientMetadata
from mcpgw_auth.service.cimd import ClientDocuments
from mcpgw_auth.service.revocations import Revocations
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store


def _unauthorized() -> OAuthError:
    return OAuthError("invalid_token", "a valid registration access token is required", status=401)


@dataclass(frozen=True)
class Registered:
    """A new client and the credentials shown to it once: they are kept only as hashes."""

    client: Client
    secret: str | None
    registration_token: str


class Clients:
    def __init__(
        self, settings: Settings, store: Store, revocations: Revocations, documents: ClientDocuments | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        self._revocations = revocations
        self._documents = documents

    def _validate(self, body: object) -> ClientMetadata:
        settings = self._settings
        return validate_metadata(
            body,
            frozenset(settings.scopes_supported),
            frozenset(s.lower() for s in settings.allowed_redirect_schemes),
        )

    async def register(self, body: object, now: int) -> Registered:
        metadata = self._validate(body)
        secret = None if metadata.token_endpoint_auth_method == "none" else secrets.new_secret()
        registration_token = secrets.new_secret()
        client = Client(
            client_id=secrets.new_secret(16),
            client_secret_hash=secrets.digest(secret) if secret else None,
            registration_token_hash=secrets.digest(registration_token),
            issued_at=now,
            metadata=metadata,
        )
        # Registrations that are never used expire (`unused_client_ttl`); the first token grant extends them.
        await self._store.save_client(client, self._settings.unused_client_ttl)
        return Registered(client, secret, registration_token)

    async def managed(self, client_id: str, registration_token: str) -> Client:
        """RFC 7592 §3: a bad token, or a client that is not there, is 401 (no hint whether the client exists)."""
        client = await self._store.get_client(client_id) if registration_token and len(client_id) <= 128 else None
        if client is None or not secrets.matches(registration_token, client.registration_token_hash):
            raise _unauthorized()
        return client

    async def update(self, client: Client, body: object) -> Client:
        """RFC 7592 §2.2: the whole metadata is replaced; the client's credentials stay."""
        if not isinstance(body, dict) or body.get("client_id") != client.client_id:
            raise OAuthError("invalid_client_metadata", "the body must carry the client's client_id")
        if "client_secret" in body and (
            client.client_secret_hash is None
            or not secrets.matches(str(body["client_secret"]), client.client_secret_hash)
        ):
            raise OAuthError("invalid_client_metadata", "client_secret does not match")
        metadata = self._validate(body)
        if (metadata.token_endpoint_auth_method == "none") != (client.client_secret_hash is None):
            raise OAuthError(
                "invalid_client_metadata",
                "token_endpoint_auth_method cannot switch between public and confidential",
            )
        updated = client.model_copy(update={"metadata": metadata})
        ttl = self._settings.client_idle_ttl if client.used else self._settings.unused_client_ttl
        await self._store.save_client(updated, ttl)
        return updated

    async def delete(self, client_id: str, now: int) -> bool:
        """Delete a client and revoke every token issued to it (RFC 7592 §2.3); False when there was none."""
        if await self._store.get_client(client_id) is None:
            return False
        await self._revocations.revoke_client(client_id, now)
        await self._store.delete_client(client_id)
        return True

    async def authenticate(self, creds: ClientCredentials) -> Client:
        """RFC 6749 §2.3: the client must use the method it registered, with the right secret. A client ID URL
        names a public client (its document cannot hold a secret), known from its metadata document."""
        if is_url_client_id(creds.client_id):
            basic = creds.method == "client_secret_basic"
            if creds.method != "none":
                raise InvalidClient("a client identified by a metadata document has no secret", basic_attempted=basic)
            if self._documents is None:  # the admin commands authenticate no one
                raise InvalidClient("unknown client", basic_attempted=basic)
            return client_auth.authenticate(await self._documents.client(creds.client_id), creds)
        client = await self._store.get_client(creds.client_id) if len(creds.client_id) <= 128 else None
        return client_auth.authenticate(client, creds)

    async def get(self, client_id: str) -> Client | None:
        return await self._store.get_client(client_id)

    async def all(self) -> list[Client]:
        return await self._store.list_clients()

    async def grant_count(self, client_id: str) -> int:
        return len(await self._store.families_of_client(client_id))
