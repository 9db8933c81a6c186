"""Clients identified by the URL of their metadata document (draft-ietf-oauth-client-id-metadata-document-00): the
document is fetched with SSRF guards, validated, and kept in the Store as a public Client until it goes stale
(docs/decisions/0007-client-id-metadata-documents.md).

The fetch (the draft §6.5, SSRF): https only; the host is resolved once and every address it resolves to must be
public unless the operator lists the host; the connection goes to that checked address (no second lookup), with
the name kept for SNI, certificate verification and Host; no redirects, no proxies; one deadline for resolving,
connecting and reading; at most `max_bytes` read (§6.6); `application/json` only.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

from mcpgw_auth.oauth.cimd import address_problem, cache_lifetime, client_id_url_problem, validate_document
from mcpgw_auth.oauth.errors import InvalidClient, OAuthError
from mcpgw_auth.records import Client
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store

log = logging.getLogger("mcpgw_auth.cimd")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAX_REMEMBERED_FAILURES = 1024


def _refused(description: str) -> InvalidClient:
    return InvalidClient(f"the client's metadata document {description}")


def _unavailable(description: str) -> OAuthError:
    return OAuthError("temporarily_unavailable", f"the client's metadata document {description}", status=503)


@dataclass(frozen=True)
class Fetched:
    document: object
    cache_control: str | None


class DocumentFetcher:
    """One guarded GET of a client ID URL."""

    def __init__(self, *, timeout: float, max_bytes: int, allowed_hosts: frozenset[str], ca_file: Path | None) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._allowed_hosts = allowed_hosts
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        # No keep-alive: a pooled connection is keyed by address, and must not carry one host's request to another
        # host that shares the address after being verified for the first. No proxy: it would resolve the name.
        transport = httpx.AsyncHTTPTransport(
            verify=context, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self._http = httpx.AsyncClient(
            transport=transport, follow_redirects=False, trust_env=False, timeout=httpx.Timeout(timeout)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(self, url: str) -> Fetched:
        if problem := client_id_url_problem(url):
            raise _refused(f"URL {problem}")
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._addresses(host, port)
                return await self._get(url, addresses)
        except TimeoutError:
            raise _unavailable(f"at {host} did not answer within {self._timeout:g} s") from None

    async def _addresses(self, host: str, port: int) -> list[Address]:
        """Every address `host` stands for, each of them checked: one bad address refuses the host (an attacker's
        DNS could hand out a public address to the check and a private one to the connection otherwise)."""
        try:
            addresses: list[Address] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                raise _unavailable(f"host {host} could not be resolved") from None
            found = (ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos)
            addresses = list(dict.fromkeys(found))
        if not addresses:
            raise _unavailable(f"host {host} could not be resolved")
        if host not in self._allowed_hosts:
            for address in addresses:
                if problem := address_problem(address):
                    raise _refused(
                        f"host {host} resolves to {problem}, not a public one "
                        "(an operator may allow it with AUTH_CIMD_ALLOWED_HOSTS)"
                    )
        return addresses

    async def _get(self, url: str, addresses: list[Address]) -> Fetched:
        parts = urlsplit(url)
        host = parts.hostname or ""
        for address in addresses:
            literal = f"[{address}]" if address.version == 6 else str(address)
            pinned = urlunsplit(("https", f"{literal}:{parts.port or 443}", parts.path, parts.query, ""))
            request = self._http.build_request(
                "GET",
                pinned,
                headers={"Host": parts.netloc, "Accept": "application/json", "Accept-Encoding": "identity"},
                extensions={"sni_hostname": host},  # TLS name and certificate check stay on the host name
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.ConnectError:
                continue  # the next address of the host
            except httpx.TimeoutException:
                raise _unavailable(f"at {host} did not answer within {self._timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise _unavailable(f"at {host} could not be fetched ({type(exc).__name__})") from None
            try:
                return await self._read(response, host)
            finally:
                await response.aclose()
        raise _unavailable(f"host {host} could not be reached over https (connection or certificate refused)")

    async def _read(self, response: httpx.Response, host: str) -> Fetched:
        status = response.status_code
        if 300 <= status < 400:
            raise _refused(f"URL answered with a redirect (HTTP {status}); redirects are not followed (draft §4)")
        if status >= 500:
            raise _unavailable(f"at {host} answered HTTP {status}")
        if status != 200:
            raise _refused(f"URL answered HTTP {status}, not 200")
        content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "application/json":
            raise _refused("must be served as application/json")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _refused(f"is larger than {self._max_bytes} bytes")
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise _refused(f"is larger than {self._max_bytes} bytes")
        except httpx.TimeoutException:
            raise _unavailable(f"at {host} did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _unavailable(f"at {host} could not be read ({type(exc).__name__})") from None
        try:
            document = json.loads(bytes(body))
        except ValueError:
            raise _refused("is not valid JSON") from None
        return Fetched(document, response.headers.get("cache-control"))


class ClientDocuments:
    """Client ID URL -> Client: from the Store while the document is fresh, else fetched once per URL at a time
    (concurrent requests for one URL wait for the same fetch); failures are answered from memory for a while."""

    def __init__(self, settings: Settings, store: Store, fetcher: DocumentFetcher, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._store = store
        self._fetcher = fetcher
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[Client]] = {}
        self._failures: collections.OrderedDict[str, tuple[int, OAuthError]] = collections.OrderedDict()

    async def client(self, url: str) -> Client:
        """The client `url` identifies; InvalidClient when its document is refused, temporarily_unavailable (503)
        when it cannot be fetched now."""
        now = int(self._clock())
        kept = await self._store.get_client(url)
        if kept is not None and kept.document_fresh_until is not None and kept.document_fresh_until > now:
            return kept
        failed = self._failures.get(url)
        if failed is not None and failed[0] > now:
            raise failed[1]
        running = self._inflight.get(url)
        if running is None:
            running = asyncio.ensure_future(self._refresh(url, kept, now))
            self._inflight[url] = running
            running.add_done_callback(lambda done: self._finished(url, done))
        # Shielded: a browser that goes away does not cancel the fetch the others are waiting for.
        return await asyncio.shield(running)

    def _finished(self, url: str, done: asyncio.Future[Client]) -> None:
        self._inflight.pop(url, None)
        if done.cancelled():
            return
        error = done.exception()
        if isinstance(error, OAuthError) and self._settings.cimd_failure_ttl:
            self._failures[url] = (int(self._clock()) + self._settings.cimd_failure_ttl, error)
            self._failures.move_to_end(url)
            while len(self._failures) > _MAX_REMEMBERED_FAILURES:
                self._failures.popitem(last=False)

    async def _refresh(self, url: str, kept: Client | None, now: int) -> Client:
        settings = self._settings
        try:
            fetched = await self._fetcher.fetch(url)
            metadata = validate_document(
                fetched.document,
                url,
                frozenset(settings.scopes_supported),
                frozenset(s.lower() for s in settings.allowed_redirect_schemes),
            )
        except OAuthError as exc:
            log.warning("client metadata document refused: %s", exc.description, extra={"client_id": url[:200]})
            raise
        lifetime = cache_lifetime(fetched.cache_control, settings.cimd_cache_min, settings.cimd_cache_max)
        used = kept is not None and kept.used
        client = Client(
            client_id=url,
            client_secret_hash=None,
            registration_token_hash="",  # no RFC 7592 management: no token can match
            issued_at=now,
            metadata=metadata,
            used=used,
            document_fresh_until=now + lifetime,
        )
        # Kept like a registration: a used client as long as one of its grants may be used, an unused one until its
        # authorization request could have ended; freshness is the record's own field, not the key's life.
        ttl = settings.client_idle_ttl if used else max(lifetime, settings.auth_request_ttl + settings.code_ttl)
        await self._store.save_client(client, ttl)
        self._failures.pop(url, None)
        return client
