"""Liveness of the process and its store."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.web.deps import HealthDep

router = APIRouter()


@router.get("/health")
async def health(health: HealthDep) -> JSONResponse:
    store_ok = await health.store_reachable()
    body = {"status": "ok" if store_ok else "degraded", "store": "ok" if store_ok else "unreachable"}
    return JSONResponse(body, status_code=200 if store_ok else 503, headers={"Cache-Control": "no-store"})
