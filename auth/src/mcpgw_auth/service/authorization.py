"""The authorization request from `/authorize` to the redirect back to the client: parked while the user signs in,
decided once on the consent page (MCP confused-deputy rule), answered with a code or an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.authorize import (
    code_redirect,
    error_redirect,
    parse_authorization_request,
    resolve_client_redirect,
)
from mcpgw_auth.oauth.cimd import is_url_client_id
from mcpgw_auth.oauth.consent import consent_key
from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.records import AuthCode, AuthRequest, Client, Identity
from mcpgw_auth.service.cimd import ClientDocuments
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store


def _expired() -> UserFacingError:
    return UserFacingError("Sign-in expired", "This authorization request is unknown or has expired.")


class Authorizations:
    def __init__(self, settings: Settings, store: Store, documents: ClientDocuments) -> None:
        self._settings = settings
        self._store = store
        self._documents = documents

    async def start(self, params: Mapping[str, Sequence[str]], now: int) -> AuthRequest:
        """RFC 6749 §4.1.1: validate and park the request until the user has signed in and decided."""
        settings = self._settings
        client_ids = params.get("client_id", [])
        if len(client_ids) == 1 and is_url_client_id(client_ids[0]):
            client: Client | None = await self._from_document(client_ids[0])
        else:
            lookup = client_ids[0] if len(client_ids) == 1 and 0 < len(client_ids[0]) <= 128 else None
            client = await self._store.get_client(lookup) if lookup else None
        client, redirect_uri = resolve_client_redirect(params, client)
        pending = parse_authorization_request(
            params,
            client,
            redirect_uri,
            resources=frozenset(settings.resources),
            require_resource=settings.require_resource,
            scopes_supported=frozenset(settings.scopes_supported),
            default_scopes=tuple(settings.default_scopes),
            request_id=secrets.new_secret(),
            csrf=secrets.new_secret(),
            now=now,
        )
        await self._store.save_auth_request(pending, settings.auth_request_ttl)
        return pending

    async def _from_document(self, url: str) -> Client:
        """The client a client ID URL names; a document that cannot be had is shown to the user, never redirected
        to: its redirect URIs are what is not known yet (RFC 6749 §4.1.2.1)."""
        try:
            return await self._documents.client(url)
        except OAuthError as exc:
            unavailable = exc.error == "temporarily_unavailable"
            raise UserFacingError(
                "Application not verified",
                f"This application names itself by a web address, but {exc.description}.",
                502 if unavailable else 400,
            ) from None

    async def pending(self, request_id: str | None) -> tuple[AuthRequest, Client]:
        """A parked request and its client, or the "expired" page."""
        pending = await self._store.get_auth_request(request_id) if request_id and len(request_id) <= 64 else None
        client = await self._store.get_client(pending.client_id) if pending else None
        if pending is None or client is None:
            raise _expired()
        return pending, client

    async def consented(self, user: Identity, pending: AuthRequest) -> bool:
        return await self._store.has_consent(_consent_key(user, pending))

    async def approve(self, user: Identity, pending: AuthRequest, client: Client, *, remember: bool, now: int) -> str:
        """Issue the code (RFC 6749 §4.1.2); return the redirect to the client."""
        if remember:
            await self._store.save_consent(
                _consent_key(user, pending),
                self._settings.consent_ttl,
                subject=user.subject,
                client_id=pending.client_id,
            )
        taken = await self._take(pending)  # decided once, even under double submit
        code = secrets.new_secret()
        record = AuthCode(
            client_id=client.client_id,
            redirect_uri=taken.redirect_uri,
            code_challenge=taken.code_challenge,
            scopes=taken.scopes,
            resource=taken.resource,
            identity=user,
            family_id=secrets.new_secret(16),
            issued_at=now,
        )
        await self._store.save_code(secrets.digest(code), record, self._settings.code_ttl)
        return code_redirect(taken.redirect_uri, code, taken.state, self._settings.issuer)

    async def refuse(self, pending: AuthRequest, error: OAuthError) -> str:
        """End the request with an RFC 6749 §4.1.2.1 error (with `iss`, RFC 9207); return the redirect."""
        taken = await self._take(pending)
        return error_redirect(taken.redirect_uri, error, taken.state, self._settings.issuer)

    async def _take(self, pending: AuthRequest) -> AuthRequest:
        taken = await self._store.take_auth_request(pending.request_id)
        if taken is None:
            raise _expired()
        return taken


def _consent_key(user: Identity, pending: AuthRequest) -> str:
    return consent_key(user.subject, pending.client_id, pending.scopes, pending.resource)
