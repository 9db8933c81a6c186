"""The guarded fetch and the cache of service/cimd.py against a real HTTPS server on loopback: one lookup per fetch
and the connection pinned to the checked address, one fetch for many concurrent requests."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcpgw_auth.oauth.errors import InvalidClient, OAuthError
from mcpgw_auth.service.cimd import ClientDocuments, DocumentFetcher
from mcpgw_auth.settings import Settings
from mcpgw_auth.store.memory import MemoryStore

from ..cimd_server import Answer, DocumentServer

pytestmark = pytest.mark.anyio

REDIRECT_URI = "http://127.0.0.1:5555/callback"
NOW = 1_750_000_000.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DocumentServer]:
    documents = DocumentServer(tmp_path)
    yield documents
    documents.close()


def fetcher(server: DocumentServer, *allowed: str, timeout: float = 2.0) -> DocumentFetcher:
    return DocumentFetcher(timeout=timeout, max_bytes=16384, allowed_hosts=frozenset(allowed), ca_file=server.ca_file)


def serve(server: DocumentServer, url: str, path: str = "/client.json", **answer: Any) -> None:
    body = {"client_id": url, "client_name": "Pinned", "redirect_uris": [REDIRECT_URI]}
    server.answer(path, Answer(body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, **answer))


class Resolver:
    """A stand-in for DNS: each lookup of a name answers the next list of addresses, and is counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []
        loop = asyncio.get_running_loop()

        async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
            self.lookups.append(host)
            addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses
            ]

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def test_the_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(
    server: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cimd.test exists in no DNS: only our one lookup can have found it; the certificate is checked for the name.
    url = server.url(host="cimd.test")
    serve(server, url)
    resolver = Resolver(monkeypatch, ["127.0.0.1"], ["10.9.9.9"])  # a rebinding second answer is never asked for
    fetch = fetcher(server, "cimd.test")
    try:
        fetched = await fetch.fetch(url)
    finally:
        await fetch.aclose()
    assert resolver.lookups == ["cimd.test"]
    assert isinstance(fetched.document, dict)
    assert fetched.document["client_id"] == url
    assert server.hosts_seen == [f"cimd.test:{server.port}"]


async def test_one_bad_address_among_good_ones_refuses_the_host(
    server: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.url(host="cimd.test")
    serve(server, url)
    Resolver(monkeypatch, ["93.184.216.34", "127.0.0.1"])
    fetch = fetcher(server)  # cimd.test not allowed
    try:
        with pytest.raises(InvalidClient) as refused:
            await fetch.fetch(url)
    finally:
        await fetch.aclose()
    assert "resolves to a loopback address, not a public one" in refused.value.description
    assert server.hits() == 0


async def test_a_name_that_does_not_resolve_is_unavailable(server: DocumentServer) -> None:
    fetch = fetcher(server)
    try:
        with pytest.raises(OAuthError) as failed:
            await fetch.fetch("https://does-not-exist.invalid/client.json")
    finally:
        await fetch.aclose()
    assert failed.value.error == "temporarily_unavailable"
    assert "could not be resolved" in failed.value.description


async def test_the_certificate_must_name_the_host(server: DocumentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"https://elsewhere.test:{server.port}/client.json"  # resolves to the server, whose certificate lacks it
    serve(server, url)
    Resolver(monkeypatch, ["127.0.0.1"])
    fetch = fetcher(server, "elsewhere.test")
    try:
        with pytest.raises(OAuthError) as failed:
            await fetch.fetch(url)
    finally:
        await fetch.aclose()
    assert "could not be reached over https" in failed.value.description


async def test_concurrent_requests_for_one_url_share_one_fetch(server: DocumentServer, tmp_path: Path) -> None:
    url = server.url()
    serve(server, url, hold=True)
    settings = Settings(issuer="http://127.0.0.1:9000", key_dir=tmp_path, cimd_allowed_hosts=["localhost"])
    store = MemoryStore(clock=lambda: NOW)
    fetch = fetcher(server, "localhost")
    documents = ClientDocuments(settings, store, fetch, lambda: NOW)
    try:
        async with anyio.create_task_group() as group:
            results: list[Any] = []

            async def resolve() -> None:
                results.append(await documents.client(url))

            for _ in range(8):
                group.start_soon(resolve)
            await anyio.to_thread.run_sync(server.wait_for_hits, "/client.json", 1)
            await anyio.wait_all_tasks_blocked()
            server.released.set()
        assert server.hits() == 1
        assert len(results) == 8
        assert {client.client_id for client in results} == {url}
        assert all(client.metadata.token_endpoint_auth_method == "none" for client in results)
        # Kept for the next request, fresh for the minimum lifetime (no Cache-Control).
        kept = await store.get_client(url)
        assert kept is not None
        assert kept.document_fresh_until == int(NOW) + settings.cimd_cache_min
        assert kept.client_secret_hash is None
        assert (await documents.client(url)) == kept
        assert server.hits() == 1
    finally:
        await fetch.aclose()


async def test_a_waiter_that_gives_up_does_not_cancel_the_fetch_for_the_others(
    server: DocumentServer, tmp_path: Path
) -> None:
    url = server.url()
    serve(server, url, hold=True)
    settings = Settings(issuer="http://127.0.0.1:9000", key_dir=tmp_path, cimd_allowed_hosts=["localhost"])
    fetch = fetcher(server, "localhost")
    documents = ClientDocuments(settings, MemoryStore(clock=lambda: NOW), fetch, lambda: NOW)
    try:
        impatient = asyncio.ensure_future(documents.client(url))
        patient = asyncio.ensure_future(documents.client(url))
        await anyio.to_thread.run_sync(server.wait_for_hits, "/client.json", 1)
        impatient.cancel()
        server.released.set()
        client = await patient
        assert client.client_id == url
        assert impatient.cancelled()
        assert server.hits() == 1
    finally:
        await fetch.aclose()
