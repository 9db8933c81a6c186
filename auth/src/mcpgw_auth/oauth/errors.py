"""One exception family for every protocol error; the wire code travels as data."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    # RFC 6749 §4.1.2.1 and §5.2
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "invalid_scope",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
    # RFC 7591 §3.2.2
    "invalid_redirect_uri",
    "invalid_client_metadata",
    # RFC 8707 §2
    "invalid_target",
    # RFC 7009 §2.2.1
    "unsupported_token_type",
    # RFC 6750 §3.1
    "invalid_token",
    "insufficient_scope",
]


class OAuthError(Exception):
    """A protocol error with its RFC error code, description and HTTP status."""

    def __init__(self, error: ErrorCode, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed -> 401 (with WWW-Authenticate when Basic was tried)."""

    def __init__(self, description: str, basic_attempted: bool = False) -> None:
        super().__init__("invalid_client", description, status=401)
        self.basic_attempted = basic_attempted


class UserFacingError(Exception):
    """An authorization request too broken to redirect back (RFC 6749 §4.1.2.1): shown to the user instead."""

    def __init__(self, title: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.status = status
