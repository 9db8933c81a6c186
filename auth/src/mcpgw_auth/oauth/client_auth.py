"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3, OAuth 2.1 §2.4)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.errors import InvalidClient, OAuthError
from mcpgw_auth.records import AuthMethod, Client


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    secret: str | None
    method: AuthMethod


def credentials(authorization: str | None, form: Mapping[str, Sequence[str]]) -> ClientCredentials:
    """Extract what the client presented; more than one method at once is an error (RFC 6749 §2.3)."""
    form_id = form.get("client_id", [])
    form_secret = form.get("client_secret", [])
    if len(form_id) > 1 or len(form_secret) > 1:
        raise OAuthError("invalid_request", "client_id and client_secret must not be repeated")
    if authorization and authorization[:6].lower() == "basic ":
        if form_secret:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            raw_id, raw_secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidClient("malformed Basic credentials", basic_attempted=True) from None
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64.
        client_id, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
        if form_id and form_id[0] != client_id:
            raise InvalidClient("client_id does not match the Basic credentials", basic_attempted=True)
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if not form_id or not form_id[0]:
        raise InvalidClient("client authentication required")
    if form_secret:
        return ClientCredentials(form_id[0], form_secret[0], "client_secret_post")
    return ClientCredentials(form_id[0], None, "none")


def authenticate(client: Client | None, creds: ClientCredentials) -> Client:
    """The client must use the method it registered, with the right secret."""
    basic = creds.method == "client_secret_basic"
    if client is None:
        raise InvalidClient("unknown client", basic_attempted=basic)
    registered = client.metadata.token_endpoint_auth_method
    if creds.method != registered:
        raise InvalidClient(f"this client must authenticate with {registered}", basic_attempted=basic)
    if registered != "none":
        if creds.secret is None or client.client_secret_hash is None:
            raise InvalidClient("client secret required", basic_attempted=basic)
        if not secrets.matches(creds.secret, client.client_secret_hash):
            raise InvalidClient("client authentication failed", basic_attempted=basic)
    return client
