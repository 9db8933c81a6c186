"""RFC 8414 authorization server metadata."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.metadata import AS_WELL_KNOWN, authorization_server_metadata
from mcpgw_auth.web.deps import GatewayDep

router = APIRouter()


@router.get(AS_WELL_KNOWN)
async def as_metadata(gateway: GatewayDep) -> JSONResponse:
    body = authorization_server_metadata(gateway.settings)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
