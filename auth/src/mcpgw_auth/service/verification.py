"""Access token checks for the hot path: verified tokens cached in memory, checked against what is revoked."""

from __future__ import annotations

from mcpgw_auth.keys import KeyManager
from mcpgw_auth.oauth import tokens
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.tokens import AccessClaims
from mcpgw_auth.records import Revocation


class RevocationList:
    """What this replica knows is revoked: token ids, and clients whose tokens up to a time are all revoked."""

    def __init__(self) -> None:
        self.jtis: dict[str, int] = {}
        self.clients: dict[str, int] = {}

    def apply(self, entries: list[Revocation]) -> None:
        for entry in entries:
            if entry.kind == "jti":
                self.jtis[entry.value] = entry.expires_at
            else:
                self.clients[entry.value] = max(entry.at, self.clients.get(entry.value, 0))

    def is_revoked(self, claims: AccessClaims) -> bool:
        if claims.jti in self.jtis:
            return True
        at = self.clients.get(claims.client_id)
        return at is not None and claims.issued_at <= at

    def prune(self, now: int, token_ttl: int) -> None:
        self.jtis = {k: exp for k, exp in self.jtis.items() if exp > now}
        self.clients = {k: at for k, at in self.clients.items() if at + token_ttl > now}


class AccessTokenVerifier:
    """Signature checks happen once per token; each request then costs a dict lookup and the revocation check."""

    def __init__(self, issuer: str, keys: KeyManager, revocations: RevocationList, cache_size: int) -> None:
        self._issuer = issuer
        self._keys = keys
        self._revocations = revocations
        self._cache: dict[str, AccessClaims] = {}
        self._cache_size = cache_size

    def verify(self, token: str, now: int) -> AccessClaims:
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token, now)
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]  # drop the oldest entry
            self._cache[token] = claims
        if claims.expires_at <= now:
            self._cache.pop(token, None)
            raise OAuthError("invalid_token", "token expired", status=401)
        if self._revocations.is_revoked(claims):
            raise OAuthError("invalid_token", "token revoked", status=401)
        return claims

    def _decode(self, token: str, now: int) -> AccessClaims:
        kid = tokens.token_kid(token)
        if kid is not None and kid not in self._keys.keys.public_keys:
            self._keys.refresh()  # a key rotated on another replica
        return tokens.decode(token, self._keys.keys, issuer=self._issuer, now=now)
