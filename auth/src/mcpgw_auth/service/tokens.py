"""The token use cases: code exchange and refresh rotation (RFC 6749 §4.1.3, §6), revocation (RFC 7009) and
introspection (RFC 7662) of a client's own tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mcpgw_auth.idp.base import AccessCheckUnavailable, AccessPolicy
from mcpgw_auth.keys import KeyManager
from mcpgw_auth.oauth import pkce, secrets, tokens
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.token_request import AuthorizationCodeGrant, RefreshTokenGrant
from mcpgw_auth.records import Client, Family, Identity, Redeemed, Replayed, Reused, Rotated
from mcpgw_auth.service.revocations import Revocations
from mcpgw_auth.service.verification import AccessTokenVerifier
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store

log = logging.getLogger("mcpgw_auth.tokens")

INACTIVE: dict[str, Any] = {"active": False}


class Tokens:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: KeyManager,
        verifier: AccessTokenVerifier,
        revocations: Revocations,
        policy: AccessPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._keys = keys
        self._verifier = verifier
        self._revocations = revocations
        self._policy = policy
        self._clock = clock

    async def exchange_code(self, client: Client, grant: AuthorizationCodeGrant, now: int) -> dict[str, Any]:
        taken = await self._store.take_code(secrets.digest(grant.code), self._settings.refresh_token_ttl)
        match taken:
            case None:
                raise OAuthError("invalid_grant", "the authorization code is invalid or expired")
            case Replayed(family_id=family_id):
                # RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: a reused code revokes the tokens it produced.
                await self._revocations.revoke_family(family_id, now)
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
        if grant.resource is not None and grant.resource not in self._settings.resources:
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
        await self._store.save_family(family, secrets.digest(first_refresh), self._settings.refresh_token_ttl)
        refresh = first_refresh if "refresh_token" in client.metadata.grant_types else None
        await self._note_use(client, family.identity, now)
        return await self._token_response(family, code.scopes, grant.resource or code.resource, refresh, now)

    async def refresh(self, client: Client, grant: RefreshTokenGrant, now: int) -> dict[str, Any]:
        if "refresh_token" not in client.metadata.grant_types:
            raise OAuthError("unauthorized_client", "the client did not register for refresh_token")
        old = secrets.digest(grant.refresh_token)
        family = await self._store.get_refresh(old)
        if family is not None:
            narrowed = await self._checked(client, family, grant, now)
        # Derived from the family, so the same token comes out if the client races itself (see _within_grace).
        new = secrets.successor(family.family_id, grant.refresh_token) if family else secrets.new_secret()
        rotated = await self._store.rotate_refresh(old, secrets.digest(new), self._settings.refresh_token_ttl)
        match rotated:
            case None:
                raise OAuthError("invalid_grant", "the refresh token is invalid or expired")
            case Reused(family_id=family_id) as reused:
                again = await self._within_grace(client, reused, grant.refresh_token, now)
                if again is None:
                    # OAuth 2.1 §4.3.1: reuse of a rotated refresh token revokes the whole family.
                    await self._revocations.revoke_family(family_id, now)
                    log.warning("refresh token reused; its family was revoked", extra={"client_id": client.client_id})
                    raise OAuthError("invalid_grant", "the refresh token was already used")
                current, new = again
                narrowed = await self._checked(client, current, grant, now)
            case Rotated(family=current):
                if family is None:  # made current between the two reads: check it now
                    narrowed = await self._checked(client, current, grant, now)
                elif current.client_id != client.client_id:
                    raise OAuthError("invalid_grant", "the refresh token was issued to another client")
        await self._note_use(client, current.identity, now)
        return await self._token_response(current, *narrowed, new, now)

    async def _checked(
        self, client: Client, family: Family, grant: RefreshTokenGrant, now: int
    ) -> tuple[tuple[str, ...], str | None]:
        """The scopes and resource of the new tokens, within the grant; and the user may still hold grants."""
        if family.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the refresh token was issued to another client")  # OAuth 2.1 §4.3.1
        scopes = family.scopes
        if grant.scopes is not None:
            if not set(grant.scopes) <= set(family.scopes):
                raise OAuthError("invalid_scope", "a refresh may not widen the granted scope")  # RFC 6749 §6
            scopes = grant.scopes
        resource = family.resource
        if grant.resource is not None:
            allowed = {family.resource} if family.resource else set(self._settings.resources)
            if grant.resource not in allowed:
                raise OAuthError("invalid_target", "the resource is outside this grant")  # RFC 8707 §2.2
            resource = grant.resource
        await self._recheck(family.identity, now)
        return scopes, resource

    async def _within_grace(
        self, client: Client, reused: Reused, refresh_token: str, now: int
    ) -> tuple[Family, str] | None:
        """The family and the successor when a just-rotated token comes back from its own client within the grace
        (several tabs, a retry after a lost answer): the same successor again, nothing revoked. Anything else is
        reuse: an older token, a successor already rotated or revoked, another client, or after the grace."""
        grace = self._settings.refresh_grace
        if not grace or not reused.successor_current or reused.rotated_at is None or now - reused.rotated_at > grace:
            return None
        successor = secrets.successor(reused.family_id, refresh_token)
        if reused.successor_hash is None or not secrets.equal(secrets.digest(successor), reused.successor_hash):
            return None
        family = await self._store.get_family(reused.family_id)
        if family is None or family.client_id != client.client_id:
            return None
        return family, successor

    async def revoke(self, client: Client, token: str, now: int) -> None:
        """RFC 7009 §2.1: the caller's own token; anything else is left alone with the same answer (§2.2)."""
        if len(token) > 8192:
            return
        # Access tokens are JWTs (three dot-separated parts); refresh tokens never contain a dot. The hint is
        # optional and only an optimisation (RFC 7009 §2.1), so the token's shape decides.
        if token.count(".") == 2:
            try:
                claims = tokens.decode(token, self._keys.keys, issuer=self._settings.issuer, now=now)
            except OAuthError:
                return  # RFC 7009 §2.2: invalid or expired tokens need no action
            if claims.client_id == client.client_id:
                await self._revocations.revoke_access_tokens([(claims.jti, claims.expires_at)], now)
            return
        family = await self._store.get_refresh(secrets.digest(token))
        if family is not None and family.client_id == client.client_id:
            # RFC 7009 §2.1: revoking a refresh token also revokes the access tokens of the same grant.
            await self._revocations.revoke_family(family.family_id, now)

    async def introspect(self, client: Client, token: str, now: int) -> dict[str, Any]:
        """RFC 7662 §2.2 for the caller's own tokens; another client's token, or none at all, is inactive without
        saying which."""
        if len(token) > 8192:
            return INACTIVE
        if token.count(".") == 2:
            try:
                claims = self._verifier.verify(token, now)
            except OAuthError:
                return INACTIVE
            if claims.client_id != client.client_id:
                return INACTIVE
            audience = sorted(claims.audience)
            return {
                "active": True,
                "token_type": "Bearer",
                "scope": claims.scope,
                "client_id": claims.client_id,
                "username": claims.username,
                "sub": claims.subject,
                "aud": audience[0] if len(audience) == 1 else audience,
                "iss": self._settings.issuer,
                "exp": claims.expires_at,
                "iat": claims.issued_at,
                "jti": claims.jti,
            }
        family = await self._store.get_refresh(secrets.digest(token))
        if family is None or family.client_id != client.client_id:
            return INACTIVE
        body: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "scope": " ".join(family.scopes),
            "client_id": family.client_id,
            "username": family.identity.username,
            "sub": family.identity.subject,
            "iss": self._settings.issuer,
        }
        if family.resource:
            body["aud"] = family.resource
        return body

    async def _note_use(self, client: Client, identity: Identity, now: int) -> None:
        await self._store.touch_client(client.client_id, self._settings.client_idle_ttl)
        await self._store.record_grant_use(identity.subject, client.client_id, now, self._settings.refresh_token_ttl)

    async def _recheck(self, identity: Identity, now: int) -> None:
        """A user who lost access (allowlist, org or team membership) cannot refresh: every grant of theirs ends."""
        try:
            allowed = await self._policy.recheck(identity)
        except AccessCheckUnavailable:
            # Nothing rotated or revoked: the client may retry the same refresh token later.
            raise OAuthError(
                "temporarily_unavailable", "the identity provider cannot confirm access right now", status=503
            ) from None
        if not allowed:
            for family_id in await self._store.families_of_user(identity.subject):
                await self._revocations.revoke_family(family_id, now)
            log.warning("refresh refused: the user is no longer allowed; their grants were revoked")
            raise OAuthError("invalid_grant", "the user is no longer allowed to use this gateway")

    async def _token_response(
        self, family: Family, scopes: tuple[str, ...], resource: str | None, refresh: str | None, now: int
    ) -> dict[str, Any]:
        settings = self._settings
        jti = secrets.new_secret(16)
        ttl = settings.access_token_ttl
        audience = [resource] if resource else list(settings.resources) or [settings.issuer]
        access = tokens.mint(
            self._keys.keys,
            issuer=settings.issuer,
            subject=family.identity.subject,
            username=family.identity.username,
            client_id=family.client_id,
            scopes=scopes,
            audience=audience,
            now=now,
            ttl=ttl,
            jti=jti,
        )
        await self._store.add_family_token(family.family_id, jti, now + ttl)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            # `exp` is whole seconds from a truncated `now`: count from the real time so the token never expires
            # before the client expects it to.
            "expires_in": max(1, int(now + ttl - self._clock())),
            "scope": " ".join(scopes),
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return body
