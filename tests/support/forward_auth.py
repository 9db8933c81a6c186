"""A stand-in for Traefik's ForwardAuth middleware in front of an MCP service, speaking real HTTP to auth.

Per request, as Traefik does it with the gateway's `mcp-auth` middleware:
- `/.well-known/*` is routed to auth instead of the service (Traefik routes the well-known documents to auth on
  every host), with X-Forwarded-Proto/Host naming the host the client used;
- everything else first costs a `GET /verify` carrying X-Forwarded-Proto/Host/Uri/Method/For and the client's
  Authorization (authRequestHeaders). A non-2xx answer goes back to the client as it is: status, headers
  (WWW-Authenticate included) and body. A 2xx answer lets the request through, after every header named in
  authResponseHeaders was deleted from it and set again from the auth response only.
"""

from __future__ import annotations

import httpx2

from support.asgi import ASGIApp, Message, Receive, Scope, Send

AUTH_RESPONSE_HEADERS = (b"x-user-id", b"x-user-name", b"x-client-id", b"x-scopes")
AUTH_REQUEST_HEADERS = (b"authorization",)
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"host",
    }
)


class ForwardAuth:
    def __init__(self, app: ASGIApp, auth_origin: str) -> None:
        self.app = app
        self.auth_origin = auth_origin.rstrip("/")
        self._client: httpx2.AsyncClient | None = None

    def _http(self) -> httpx2.AsyncClient:
        # Created lazily so it belongs to the server's event loop; closed at lifespan shutdown.
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=10, follow_redirects=False)
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_on_shutdown(send))
        elif scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["path"].startswith("/.well-known/"):
            await self._route_to_auth(scope, receive, send)
        else:
            await self._forward_auth(scope, receive, send)

    def _closing_on_shutdown(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and self._client:
                await self._client.aclose()
                self._client = None
            await send(message)

        return wrapped

    @staticmethod
    def _forwarded(scope: Scope) -> dict[str, str]:
        headers = dict(scope["headers"])
        uri = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            uri += b"?" + scope["query_string"]
        client = scope.get("client") or ("", 0)
        return {
            "x-forwarded-proto": scope["scheme"],
            "x-forwarded-host": headers.get(b"host", b"").decode("latin-1"),
            "x-forwarded-uri": uri.decode("latin-1"),
            "x-forwarded-method": scope["method"],
            "x-forwarded-for": client[0],
        }

    async def _forward_auth(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self._forwarded(scope)
        for name, value in scope["headers"]:
            if name in AUTH_REQUEST_HEADERS:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        answer = await self._http().get(f"{self.auth_origin}/verify", headers=headers)
        if not 200 <= answer.status_code < 300:
            await _relay(answer, send)
            return
        kept = [(name, value) for name, value in scope["headers"] if name not in AUTH_RESPONSE_HEADERS]
        for name in AUTH_RESPONSE_HEADERS:
            kept += [(name, value.encode("latin-1")) for value in answer.headers.get_list(name.decode())]
        await self.app({**scope, "headers": kept}, receive, send)

    async def _route_to_auth(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name not in _HOP_BY_HOP
        }
        forwarded = self._forwarded(scope)
        headers["x-forwarded-proto"] = forwarded["x-forwarded-proto"]
        headers["x-forwarded-host"] = forwarded["x-forwarded-host"]
        url = f"{self.auth_origin}{forwarded['x-forwarded-uri']}"
        answer = await self._http().request(scope["method"], url, headers=headers, content=body)
        await _relay(answer, send)


async def _relay(answer: httpx2.Response, send: Send) -> None:
    body = answer.content  # decoded, hence no Content-Encoding below
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.multi_items()
        if name.lower().encode("latin-1") not in _HOP_BY_HOP and name.lower() != "content-encoding"
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
