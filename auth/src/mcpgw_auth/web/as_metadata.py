"""RFC 8414 authorization server metadata."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.metadata import AS_WELL_KNOWN, authorization_server_metadata
from mcpgw_auth.web.deps import SettingsDep

router = APIRouter()


@router.get(AS_WELL_KNOWN)
async def as_metadata(settings: SettingsDep) -> JSONResponse:
    body = authorization_server_metadata(
        settings.issuer, settings.scopes_supported, registration=settings.registration_enabled
    )
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
