"""Typed records the protocol core and the store exchange. Secrets never appear here in the clear."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identity(Record):
    """Who logged in: `subject` is stable (provider-prefixed), `username` is the display login."""

    subject: str
    username: str
    email: str | None = None


class ClientMetadata(Record):
    """RFC 7591 §2 client metadata, after validation."""

    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    scope: str | None = None
    contacts: tuple[str, ...] | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    software_id: str | None = None
    software_version: str | None = None


class Client(Record):
    """A registered client (RFC 7591), or one identified by the URL of its metadata document (`document_fresh_until`
    set: the document is used until then, then fetched again; such a client has no secret and no registration token).
    """

    client_id: str
    client_secret_hash: str | None
    registration_token_hash: str
    issued_at: int
    metadata: ClientMetadata
    used: bool = False
    document_fresh_until: int | None = None

    @property
    def from_document(self) -> bool:
        return self.document_fresh_until is not None


class AuthRequest(Record):
    """A validated authorization request waiting for login and consent."""

    request_id: str
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str | None
    csrf: str
    created_at: int


class AuthCode(Record):
    """RFC 6749 §4.1.2: what a code is bound to (client, redirect URI, PKCE challenge, resource, user)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str | None
    identity: Identity
    family_id: str
    issued_at: int


class Family(Record):
    """One grant: the chain of rotated refresh tokens and the access tokens issued from it."""

    family_id: str
    client_id: str
    identity: Identity
    scopes: tuple[str, ...]
    resource: str | None
    created_at: int


class LoginState(Record):
    """A sign-in at the identity provider in flight, found again by the hash of the OAuth `state` it sent upstream.

    `request_id` is the pending authorization request it continues (None: a sign-in for the account page);
    `browser_hash` binds it to the browser that started it; `code_verifier` is its PKCE verifier (RFC 7636).
    """

    request_id: str | None
    browser_hash: str
    code_verifier: str
    created_at: int


class GrantUse(Record):
    """When a user's grants to one client were first and last used (a code exchange or a refresh)."""

    client_id: str
    first_used: int
    last_used: int


class Revocation(Record):
    """A revocation feed entry every replica follows: a token id, or all tokens of a client issued up to `at`."""

    kind: Literal["jti", "client"]
    value: str
    at: int
    expires_at: int = Field(description="When the entry stops mattering (the latest expiry of what it revokes).")


class Redeemed(Record):
    outcome: Literal["redeemed"] = "redeemed"
    code: AuthCode


class Replayed(Record):
    """The code was already redeemed: RFC 6749 §4.1.2 says revoke what it issued."""

    outcome: Literal["replayed"] = "replayed"
    family_id: str


class Rotated(Record):
    outcome: Literal["rotated"] = "rotated"
    family: Family


class Reused(Record):
    """A rotated refresh token came back: OAuth 2.1 §4.3.1 says revoke the whole family, unless it is the same client
    racing itself within the refresh grace (decided by the caller from the successor and when it was rotated)."""

    outcome: Literal["reused"] = "reused"
    family_id: str
    successor_hash: str | None = None  # the token it was rotated into
    rotated_at: int | None = None
    successor_current: bool = False  # that successor has not been rotated (or revoked) itself
