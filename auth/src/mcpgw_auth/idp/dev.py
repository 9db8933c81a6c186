"""The development identity provider: any well-formed username, only ever on a loopback http issuer."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from mcpgw_auth.idp.base import AllowEveryone
from mcpgw_auth.oauth.errors import UserFacingError
from mcpgw_auth.oauth.urls import is_loopback_host
from mcpgw_auth.records import Identity

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class DevIdentityProvider:
    name = "dev"

    def __init__(self, issuer: str) -> None:
        parts = urlsplit(issuer)
        if parts.scheme != "http" or not is_loopback_host(parts.hostname or ""):
            raise RuntimeError("the dev login refuses to run unless the issuer is a loopback http URL")
        self.access_policy = AllowEveryone()

    def sign_in(self, username: str) -> Identity:
        username = username.strip()
        if not _USERNAME.fullmatch(username):
            raise UserFacingError("Invalid username", "Use 1-64 letters, digits, '.', '_' or '-'.")
        return Identity(subject=f"dev:{username}", username=username)
