"""ForwardAuth `/verify` (docs/forwardauth.md): the hot path of every MCP request.

A plain ASGI handler in front of the FastAPI app: no routing, dependency resolution or middleware per request.
Signatures are checked once per token (AccessTokenVerifier caches them); revocations arrive from the store feed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.metadata import prm_url
from mcpgw_auth.service.verification import AccessTokenVerifier
from mcpgw_auth.settings import Settings
from mcpgw_auth.web.origin import origin_from

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_SUSPICIOUS = ("/./", "/../", "%2e", "%2f", "%5c", "\\")
_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class VerifyEndpoint:
    def __init__(self, settings: Settings, verifier: AccessTokenVerifier, clock: Callable[[], float]) -> None:
        self._verifier = verifier
        self._clock = clock
        by_origin: dict[str, list[tuple[str, str]]] = {}
        for resource in settings.resources:
            origin, _, path = resource.partition("://")[2].partition("/")
            scheme = resource.split("://", 1)[0]
            by_origin.setdefault(f"{scheme}://{origin}", []).append(("/" + path if path else "", resource))
        self._by_origin = {o: sorted(paths, key=lambda p: -len(p[0])) for o, paths in by_origin.items()}
        self._required = frozenset(settings.required_scopes)
        self._scope_param = " ".join(settings.required_scopes)
        self._challenges = {r: self._challenge(r, None) for r in settings.resources}

    def _challenge(self, resource: str, error: OAuthError | None) -> bytes:
        # RFC 9728 §5.1 resource_metadata; RFC 6750 §3 error attributes when a token was presented.
        parts = [f'Bearer resource_metadata="{prm_url(resource)}"', f'scope="{self._scope_param}"']
        if error is not None:
            parts.append(f'error="{error.error}"')
            parts.append(f'error_description="{_quote(error.description)}"')
        return ", ".join(parts).encode()

    def resource_for(self, origin: str, uri: str) -> str | None:
        path = uri.split("?", 1)[0].split("#", 1)[0]
        lowered = path.lower()
        if any(s in lowered for s in _SUSPICIOUS) or lowered.endswith(("/..", "/.")):
            return None
        for prefix, resource in self._by_origin.get(origin, ()):
            if path == prefix or path.startswith(prefix + "/") or (prefix == "" and path.startswith("/")):
                return resource
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = proto = host = uri = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                host = value
            elif name == b"x-forwarded-uri":
                uri = value
            elif name == b"host" and host is None:
                host = value
        origin = origin_from(proto.decode("latin-1") if proto else None, host.decode("latin-1") if host else None)
        resource = self.resource_for(origin, uri.decode("latin-1") if uri else "/")
        if resource is None:
            body = {"error": "not_found", "error_description": "no protected resource at this address"}
            return await _respond(send, 404, [_JSON], body)
        if auth is None or auth[:7].lower() != b"bearer " or len(auth) > 8192:
            # RFC 6750 §3.1: no credentials -> a bare challenge, no error code.
            headers = [(b"www-authenticate", self._challenges[resource]), _JSON, _NO_STORE]
            body = {"error": "unauthorized", "error_description": "a bearer token is required"}
            return await _respond(send, 401, headers, body)
        token = auth[7:].strip().decode("latin-1")
        try:
            claims = self._verifier.verify(token, int(self._clock()))
            if resource not in claims.audience:  # RFC 8707 §2 / MCP: the audience must be this resource
                raise OAuthError("invalid_token", "the token was issued for another resource", status=401)
        except OAuthError as exc:
            headers = [(b"www-authenticate", self._challenge(resource, exc)), _JSON, _NO_STORE]
            return await _respond(send, 401, headers, exc.to_json())
        if not self._required <= claims.scopes:
            # RFC 6750 §3.1 insufficient_scope, naming every required scope at once.
            error = OAuthError("insufficient_scope", "the token lacks a required scope", status=403)
            headers = [(b"www-authenticate", self._challenge(resource, error)), _JSON, _NO_STORE]
            return await _respond(send, 403, headers, error.to_json())
        headers = [
            (b"x-user-id", claims.subject.encode()),
            (b"x-user-name", claims.username.encode()),
            (b"x-client-id", claims.client_id.encode()),
            (b"x-scopes", claims.scope.encode()),
            _NO_STORE,
        ]
        await _respond(send, 200, headers, None)


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: object) -> None:
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
