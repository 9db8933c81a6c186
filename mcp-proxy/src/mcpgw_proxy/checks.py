"""What a request to the MCP endpoint must pass before it reaches a session, and the refusal every check raises.

`HttpError` carries a refusal as data (status, JSON-RPC code, message, extra header fields); `refuse` renders it, the
one place an HTTP-level refusal is written. `RequestChecks` holds the settings the checks need, prepared once.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from mcpgw_proxy.config import SUPPORTED_PROTOCOL_VERSIONS, ProxySettings
from mcpgw_proxy.era import SERVED_VERSIONS
from mcpgw_proxy.jsonrpc import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION, RequestId, error_response
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.server import JSON, Exchange, Request

Headers = list[tuple[bytes, bytes]]

# Host names that always mean this machine; a browser never sends them for a page of another site (RFC 6761 §6.3).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
DEFAULT_PORTS = {"http": ":80", "https": ":443"}
MAX_REMEMBERED_PEERS = 1024  # peers whose trust was decided, remembered so the decision is a lookup


class HttpError(Exception):
    """An HTTP-level refusal, carried as a JSON-RPC error body: with the request's id once it could be read
    (basic/index §Error Responses), else with a null id."""

    def __init__(
        self,
        status: int,
        message: str,
        code: int = INVALID_REQUEST,
        data: Any = None,
        headers: Headers | None = None,
        ident: RequestId | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.data = data
        self.headers = headers or []
        self.ident = ident


def refuse(exchange: Exchange, error: HttpError, metrics: Metrics) -> None:
    """Answer with `error`; a stream already under way is ended instead, rather than left open."""
    metrics.errors.labels(f"http_{error.status}").inc()
    if exchange.started:
        exchange.end()
        return
    body = error_response(error.ident, error.code, error.message, error.data)
    exchange.reply(error.status, body, [JSON, *error.headers])


def host_name(host: str) -> str:
    """The name part of a Host header value (`[::1]:8000` -> `[::1]`, `localhost:8000` -> `localhost`)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def is_loopback_host(host: str) -> bool:
    name = host_name(host)
    return name in LOOPBACK_HOSTS or name.endswith(".localhost")


def listens_on_loopback(local: tuple[str, int] | None) -> bool:
    if local is None:
        return False
    address = local[0].lower()
    return address in ("localhost", "::1", "[::1]") or address.startswith("127.")


def _first(value: bytes) -> str:
    """The first of a forwarded header's comma-separated values (the client's end of a proxy chain)."""
    return value.split(b",", 1)[0].strip().decode("latin-1").lower()


class RequestChecks:
    def __init__(self, settings: ProxySettings) -> None:
        self._origins = {o.rstrip("/").lower() for o in settings.allowed_origins}
        self._hosts = {h.lower() for h in settings.allowed_hosts}
        self._proxies = tuple(ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies)
        self._peers: dict[str, bool] = {}
        self._allow_anonymous = settings.allow_anonymous

    def admit(self, request: Request) -> str:
        """The checks every request passes, in order (Host, Origin, user); returns the user (`""`: anonymous)."""
        self.host(request)
        self.origin(request)
        return self.user(request.headers)

    def host(self, request: Request) -> None:
        """DNS rebinding (security best practices §Local MCP Server Compromise): a browser tricked into reaching us
        under a foreign name sends that name as Host, and an Origin of the same name. `allowed_hosts` lists the names
        we answer to (`name` for any port, `name:port` for one); without it, a proxy listening on loopback answers
        only to loopback names, and one listening elsewhere leaves Host to the reverse proxy in front."""
        raw = request.headers.get(b"host")
        if raw is None:
            return  # HTTP/1.0 without Host: not a browser
        host = raw.decode("latin-1").strip().lower()
        if self._hosts:
            allowed = host in self._hosts or host_name(host) in self._hosts
        elif listens_on_loopback(request.local):
            allowed = is_loopback_host(host)
        else:
            return
        if not allowed:
            raise HttpError(421, "Misdirected Request: this server does not answer to that Host")

    def origin(self, request: Request) -> None:
        """Origin validation against DNS rebinding (transports §Security Warning): a request from a browser page of
        another origin than the URL the client used, and not listed in `allowed_origins`, gets 403. Without Origin
        the request comes from no browser page (non-browser clients) and passes."""
        origin = request.headers.get(b"origin")
        if origin is None:
            return
        text = origin.decode("latin-1").rstrip("/").lower()
        if text in self._origins or text == self.own_origin(request):
            return
        raise HttpError(403, "Forbidden: origin not allowed")

    def own_origin(self, request: Request) -> str | None:
        """The origin of the URL the client used (RFC 6454 §4): as a trusted reverse proxy forwarded it, else as this
        server received it, over plain HTTP. X-Forwarded-* from any other peer are the client's own words."""
        headers = request.headers
        raw_host = headers.get(b"host")
        host = raw_host.decode("latin-1").strip().lower() if raw_host is not None else ""
        scheme = "http"
        if self._proxies and self._trusts(request.peer):
            if forwarded_host := headers.get(b"x-forwarded-host"):
                host = _first(forwarded_host)
            if forwarded_proto := headers.get(b"x-forwarded-proto"):
                scheme = _first(forwarded_proto)
        if not host:
            return None
        return f"{scheme}://{host.removesuffix(DEFAULT_PORTS.get(scheme, ''))}"

    def endpoint_url(self, request: Request, path: str) -> str:
        """The URL of the MCP endpoint as the client reaches it: its origin, and the path prefix a trusted reverse
        proxy stripped (Traefik's StripPrefix sets X-Forwarded-Prefix), before `path`."""
        prefix = ""
        if self._proxies and self._trusts(request.peer):
            prefix = _first(request.headers.get(b"x-forwarded-prefix", b"")).rstrip("/")
        return f"{self.own_origin(request) or ''}{prefix}{path}"

    def _trusts(self, peer: str | None) -> bool:
        if peer is None:
            return False
        trusted = self._peers.get(peer)
        if trusted is None:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                trusted = False
            else:
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                    address = address.ipv4_mapped  # a dual-stack socket's form of an IPv4 peer
                trusted = any(address in network for network in self._proxies)
            if len(self._peers) >= MAX_REMEMBERED_PEERS:
                self._peers.clear()
            self._peers[peer] = trusted
        return trusted

    def user(self, headers: dict[bytes, bytes]) -> str:
        user = headers.get(b"x-user-id", b"").decode("latin-1").strip()
        if user:
            return user
        if self._allow_anonymous:
            return ""
        raise HttpError(401, "Unauthorized: no authenticated user (X-User-Id) on this request")

    @staticmethod
    def protocol_version(headers: dict[bytes, bytes]) -> None:
        version = headers.get(b"mcp-protocol-version")
        if version is None:
            return  # absent: assume 2025-03-26 (transports §Protocol Version Header)
        text = version.decode("latin-1").strip()
        if text not in SUPPORTED_PROTOCOL_VERSIONS:
            data = {"supported": list(SERVED_VERSIONS), "requested": text[:64]}  # both eras: every version served
            raise HttpError(
                400, f"Bad Request: unsupported protocol version {text[:64]!r}", UNSUPPORTED_PROTOCOL_VERSION, data
            )
