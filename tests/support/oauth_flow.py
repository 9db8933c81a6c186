"""The authorization code flow over real HTTP, as a client and its user's browser do it: register a public client,
then authorize (PKCE S256), sign in on the dev login page, allow on the consent page, exchange the code."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from support.browser import Browser, LeftSite, Page


async def register_public_client(client: httpx2.AsyncClient, origin: str, redirect_uri: str, name: str = "test") -> str:
    body = {
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": name,
    }
    response = await client.post(f"{origin}/register", json=body)
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


async def obtain_tokens(
    client: httpx2.AsyncClient, origin: str, client_id: str, redirect_uri: str, resource: str, username: str
) -> dict[str, Any]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    browser = Browser(client)
    page = await browser.open(str(httpx2.URL(f"{origin}/authorize", params=query)))
    assert isinstance(page, Page)
    page = await browser.submit(page, page.form(), username=username)
    assert isinstance(page, Page)
    left = await browser.submit(page, page.form(), decision="allow")
    assert isinstance(left, LeftSite)
    exchange = {
        "grant_type": "authorization_code",
        "code": parse_qs(urlsplit(left.location).query)["code"][0],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client_id,
    }
    response = await client.post(f"{origin}/token", data=exchange)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
