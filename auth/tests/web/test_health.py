"""GET /health: the process and its store; plus the request id every response carries."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcpgw_auth.app import create_app
from mcpgw_auth.settings import Settings
from mcpgw_auth.store.memory import MemoryStore
from starlette.testclient import TestClient

from .conftest import ISSUER, RESOURCES, Env


class UnreachableStore(MemoryStore):
    """A store whose backend does not answer."""

    async def ping(self) -> bool:
        return False


@pytest.fixture
def degraded(tmp_path: Path, key_template: Path) -> Iterator[TestClient]:
    shutil.copytree(key_template, tmp_path / "keys")
    settings = Settings(issuer=ISSUER, resources=list(RESOURCES), key_dir=tmp_path / "keys")
    with TestClient(create_app(settings, store=UnreachableStore()), base_url=ISSUER) as client:
        yield client


def test_health_is_ok_with_a_working_store(env: Env) -> None:
    response = env.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_health_is_503_when_the_store_is_unreachable(degraded: TestClient) -> None:
    response = degraded.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "store": "unreachable"}


def test_every_response_carries_a_request_id(env: Env) -> None:
    assert len(env.http.get("/health").headers["x-request-id"]) >= 8
    assert env.http.get("/no-such-page").headers["x-request-id"]


def test_a_well_formed_request_id_is_kept(env: Env) -> None:
    assert env.http.get("/health", headers={"X-Request-Id": "trace-42.a_b"}).headers["x-request-id"] == "trace-42.a_b"


@pytest.mark.parametrize("given", ["a b", "x" * 65, "<script>", "id;drop", "é"])
def test_a_malformed_request_id_is_replaced(env: Env, given: str) -> None:
    response = env.http.get("/health", headers=[(b"X-Request-Id", given.encode())])
    assert response.headers["x-request-id"] != given
    assert response.headers["x-request-id"].isalnum()


def test_an_unknown_path_is_a_json_404(env: Env) -> None:
    response = env.http.get("/no-such-page")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_api_documentation_pages_are_not_served(env: Env) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert env.http.get(path).status_code == 404, path
