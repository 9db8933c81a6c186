"""Issuing, rotating and revoking grants: the protocol core's decisions applied to the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcpgw_auth.idp.base import AccessCheckUnavailable, AccessPolicy, AllowEveryone
from mcpgw_auth.oauth import pkce, secrets, tokens
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.token_request import AuthorizationCodeGrant, RefreshTokenGrant
from mcpgw_auth.records import (
    AuthCode,
    Client,
    Family,
    Identity,
    Redeemed,
    Replayed,
    Reused,
    Revocation,
    Rotated,
)
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.verification import KeyManager, RevocationList

log = logging.getLogger("mcpgw_auth.grants")


@dataclass
class Grants:
    settings: Settings
    store: Store
    keys: KeyManager
    revocations: RevocationList
    clock: Callable[[], float] = time.time
    policy: AccessPolicy = field(default_factory=AllowEveryone)

    async def issue_code(
        self,
        client: Client,
        identity: Identity,
        redirect_uri: str,
        challenge: str,
        scopes: tuple[str, ...],
        resource: str | None,
        now: int,
    ) -> str:
        code = secrets.new_secret()
        record = AuthCode(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            scopes=scopes,
            resource=resource,
            identity=identity,
            family_id=secrets.new_secret(16),
            issued_at=now,
        )
        await self.store.save_code(secrets.digest(code), record, self.settings.code_ttl)
        return code

    async def exchange_code(self, client: Client, grant: AuthorizationCodeGrant, now: int) -> dict[str, Any]:
        taken = await self.store.take_code(secrets.digest(grant.code), self.settings.refresh_token_ttl)
        match taken:
            case None:
                raise OAuthError("invalid_grant", "the authorization code is invalid or expired")
            case Replayed(family_id=family_id):
                # RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: a reused code revokes the tokens it produced.
                await self.revoke_family(family_id, now)
                log.warning(
                    "authorization code replayed; its grant was revoked",
                    extra={"client_id": client.client_id},
                )
                raise OAuthError("invalid_grant", "the authorization code was already used")
            case Redeemed(code=code):
                pass
        if code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")  # RFC 6749 §4.1.3
        if grant.redirect_uri != code.redirect_uri:  # RFC 6749 §4.1.3: identical to the authorization request's
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if not pkce.verify(grant.code_verifier, code.code_challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed")  # RFC 7636 §4.6
        if grant.resource is not None and grant.resource != (code.resource or grant.resource):
            raise OAuthError("invalid_target", "resource differs from the authorization request")  # RFC 8707 §2.2
        if grant.resource is not None and grant.resource not in self.settings.resources:
            raise OAuthError("invalid_target", "the resource is not served by this gateway")
        family = Family(
            family_id=code.family_id,
            client_id=client.client_id,
            identity=code.identity,
            scopes=code.scopes,
            resource=code.resource,
            created_at=now,
        )
        # The family is kept even without a refresh token, so that a replayed code can revoke what it issued.
        first_refresh = secrets.new_secret()
        await self.store.save_family(family, secrets.digest(first_refresh), self.settings.refresh_token_ttl)
        refresh = first_refresh if "refresh_token" in client.metadata.grant_types else None
        await self.store.touch_client(client.client_id, self.settings.client_idle_ttl)
        await self.store.record_grant_use(
            family.identity.subject, client.client_id, now, self.settings.refresh_token_ttl
        )
        return await self._token_response(family, code.scopes, grant.resource or code.resource, refresh, now)

    async def refresh(self, client: Client, grant: RefreshTokenGrant, now: int) -> dict[str, Any]:
        old = secrets.digest(grant.refresh_token)
        family = await self.store.get_refresh(old)
        if family is not None and family.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the refresh token was issued to another client")  # OAuth 2.1 §4.3.1
        scopes = family.scopes if family else ()
        if family is not None and grant.scopes is not None:
            if not set(grant.scopes) <= set(family.scopes):
                raise OAuthError("invalid_scope", "a refresh may not widen the granted scope")  # RFC 6749 §6
            scopes = grant.scopes
        resource = family.resource if family else None
        if family is not None and grant.resource is not None:
            allowed = {family.resource} if family.resource else set(self.settings.resources)
            if grant.resource not in allowed:
                raise OAuthError("invalid_target", "the resource is outside this grant")  # RFC 8707 §2.2
            resource = grant.resource
        if family is not None:
            await self._recheck(family.identity, now)
        new = secrets.new_secret()
        rotated = await self.store.rotate_refresh(old, secrets.digest(new), self.settings.refresh_token_ttl)
        match rotated:
            case None:
                raise OAuthError("invalid_grant", "the refresh token is invalid or expired")
            case Reused(family_id=family_id):
                # OAuth 2.1 §4.3.1: reuse of a rotated refresh token revokes the whole family.
                await self.revoke_family(family_id, now)
                log.warning("refresh token reused; its family was revoked", extra={"client_id": client.client_id})
                raise OAuthError("invalid_grant", "the refresh token was already used")
            case Rotated(family=current):
                if current.client_id != client.client_id:
                    raise OAuthError("invalid_grant", "the refresh token was issued to another client")
        await self.store.touch_client(client.client_id, self.settings.client_idle_ttl)
        await self.store.record_grant_use(
            current.identity.subject, client.client_id, now, self.settings.refresh_token_ttl
        )
        return await self._token_response(current, scopes, resource, new, now)

    async def _recheck(self, identity: Identity, now: int) -> None:
        """A user who lost access (allowlist, org or team membership) cannot refresh: every grant of theirs ends."""
        try:
            allowed = await self.policy.recheck(identity)
        except AccessCheckUnavailable:
            # Nothing rotated or revoked: the client may retry the same refresh token later.
            raise OAuthError(
                "temporarily_unavailable", "the identity provider cannot confirm access right now", status=503
            ) from None
        if not allowed:
            for family_id in await self.store.families_of_user(identity.subject):
                await self.revoke_family(family_id, now)
            log.warning("refresh refused: the user is no longer allowed; their grants were revoked")
            raise OAuthError("invalid_grant", "the user is no longer allowed to use this gateway")

    async def _token_response(
        self, family: Family, scopes: tuple[str, ...], resource: str | None, refresh: str | None, now: int
    ) -> dict[str, Any]:
        jti = secrets.new_secret(16)
        ttl = self.settings.access_token_ttl
        audience = [resource] if resource else list(self.settings.resources) or [self.settings.issuer]
        access = tokens.mint(
            self.keys.keys,
            issuer=self.settings.issuer,
            subject=family.identity.subject,
            username=family.identity.username,
            client_id=family.client_id,
            scopes=scopes,
            audience=audience,
            now=now,
            ttl=ttl,
            jti=jti,
        )
        await self.store.add_family_token(family.family_id, jti, now + ttl)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            # `exp` is whole seconds from a truncated `now`: count from the real time so the token never expires
            # before the client expects it to.
            "expires_in": max(1, int(now + ttl - self.clock())),
            "scope": " ".join(scopes),
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return body

    async def revoke_family(self, family_id: str, now: int) -> None:
        issued = await self.store.revoke_family(family_id)
        await self.revoke_access_tokens(issued, now)

    async def revoke_access_tokens(self, issued: list[tuple[str, int]], now: int) -> None:
        entries = [Revocation(kind="jti", value=jti, at=now, expires_at=exp) for jti, exp in issued if exp > now]
        if entries:
            self.revocations.apply(entries)  # effective on this replica at once
            await self.store.publish_revocations(entries)

    async def revoke_client(self, client_id: str, now: int) -> None:
        for family_id in await self.store.families_of_client(client_id):
            await self.store.revoke_family(family_id)
        entry = Revocation(kind="client", value=client_id, at=now, expires_at=now + self.settings.access_token_ttl)
        self.revocations.apply([entry])
        await self.store.publish_revocations([entry])
