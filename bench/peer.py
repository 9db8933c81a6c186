"""The peer: mcp-oauth-dynamicclient 0.2.0 from PyPI (the auth service of the project we replace).

It lives in its own virtual environment, bench/.peers/dynamicclient/ (gitignored), made with `uv venv` and
`uv pip install`. Its server runs through bench/peer_server.py under the peer's interpreter, against the benchmark's
Redis (database 1). How it works, read from its installed source:

- config.py: pydantic Settings from environment variables, all required (GITHUB_CLIENT_ID, JWT_ALGORITHM, BASE_DOMAIN,
  REDIS_URL, ...); keys.py: the RS256 key from JWT_PRIVATE_KEY_B64 (its "blessed" algorithm; HS256 is its fallback).
- /verify (routes.py -> async_resource_protector.py -> resource_protector.py): FastAPI dependency; authlib
  `JsonWebToken.decode` with the RSA public key (signature, iss = https://auth.<BASE_DOMAIN>, exp, jti) on every
  request, then `GET oauth:token:<jti>` in Redis (a token missing there counts as revoked); 200 with X-User-Id,
  X-User-Name, X-Auth-Token. Every request also passes its "http" middleware that builds two log records.
- Tokens come only from its /token, for a code its /callback stored after a GitHub login. This machine cannot reach
  GitHub, so peer_server.py replaces the GitHub code exchange (one method) with a fixed user; the rest of the flow,
  /register -> /authorize -> /callback -> /token, is the peer's own code driven over HTTP here.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import venvs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flows import pkce_pair
from procs import BenchError, Processes, Started, free_port, http_ready, wait_until

PACKAGE = "mcp-oauth-dynamicclient"
VERSION = "0.2.0"
BENCH = Path(__file__).resolve().parent
VENV = venvs.PEERS / "dynamicclient"
BASE_DOMAIN = "peer.bench.invalid"
REDIRECT_URI = "http://127.0.0.1:33418/callback"
FAKE_GITHUB_CODE = "bench-github-code"  # the one code peer_server.py's stand-in for GitHub accepts


def _python() -> Path:
    return venvs.python(VENV)


def ensure_venv() -> None:
    """Create the peer's virtual environment and install the pinned package, unless it is already there."""
    venvs.ensure(VENV, PACKAGE, VERSION)


def _private_key_b64() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(pem).decode()


def peer_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        GITHUB_CLIENT_ID="bench-unused",
        GITHUB_CLIENT_SECRET="bench-unused",  # never sent: the GitHub exchange is stood in for
        JWT_SECRET=secrets.token_urlsafe(32),  # required by its Settings even with RS256
        JWT_ALGORITHM="RS256",
        JWT_PRIVATE_KEY_B64=_private_key_b64(),
        BASE_DOMAIN=BASE_DOMAIN,
        REDIS_URL=f"{redis_url}/1",
        REDIS_PASSWORD="",
        ACCESS_TOKEN_LIFETIME="3600",
        REFRESH_TOKEN_LIFETIME="2592000",
        SESSION_TIMEOUT="3600",
        CLIENT_LIFETIME="7776000",
        ALLOWED_GITHUB_USERS="*",
        MCP_PROTOCOL_VERSION="2025-06-18",
        LOG_LEVEL="WARNING",  # as AUTH_LOG_LEVEL=WARNING for ours
        PYTHONPATH=str(BENCH),  # peer_server.py imports server_flags.py
    )
    return env


@dataclass
class Peer:
    base: str
    started: Started


def start(procs: Processes, work: Path, redis_url: str) -> Peer:
    ensure_venv()
    port = free_port()
    cwd = work / "peer"
    cwd.mkdir()  # no .env here: its Settings would read one
    argv = [str(_python()), str(BENCH / "peer_server.py"), "--port", str(port)]
    started = procs.start("peer", argv, peer_env(redis_url), cwd)
    base = f"http://127.0.0.1:{port}"
    wait_until("peer", http_ready(f"{base}/.well-known/oauth-authorization-server"), started)
    return Peer(base, started)


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        raise BenchError(f"peer {what}: expected {status}, got {response.status_code}: {response.text[:300]}")
    return response


def obtain_token(peer: Peer) -> str:
    """The peer's own flow over HTTP: register, authorize, (stand-in GitHub login) callback, token."""
    with httpx.Client(base_url=peer.base, timeout=10) as http:
        registration = {"redirect_uris": [REDIRECT_URI], "client_name": "bench", "scope": "openid profile email"}
        client = _expect(http.post("/register", json=registration), 201, "POST /register").json()
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(8)
        params = {
            "client_id": client["client_id"],
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        to_github = _expect(http.get("/authorize", params=params), 307, "GET /authorize")
        github_state = parse_qs(urlsplit(to_github.headers["location"]).query)["state"][0]
        callback = {"code": FAKE_GITHUB_CODE, "state": github_state}
        to_client = _expect(http.get("/callback", params=callback), 307, "GET /callback")
        query = parse_qs(urlsplit(to_client.headers["location"]).query)
        if query.get("state") != [state]:
            raise BenchError(f"peer /callback redirected to {to_client.headers['location']}")
        form = {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "code_verifier": verifier,
        }
        token: str = _expect(http.post("/token", data=form), 200, "POST /token").json()["access_token"]
        check = http.get("/verify", headers={"Authorization": f"Bearer {token}"})
        _expect(check, 200, "GET /verify with its own token")
        return token


if __name__ == "__main__":  # `uv run python bench/peer.py`: just prepare the virtual environment
    ensure_venv()
    sys.stdout.write(f"{PACKAGE}=={VERSION} ready in {VENV}\n")
