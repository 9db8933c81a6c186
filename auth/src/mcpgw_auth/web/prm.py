"""RFC 9728 protected resource metadata for every resource the gateway fronts; 404 for any other."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mcpgw_auth.oauth.metadata import PRM_WELL_KNOWN, protected_resource_metadata, resource_for_prm
from mcpgw_auth.web.deps import SettingsDep
from mcpgw_auth.web.origin import request_origin

router = APIRouter()


@router.get(PRM_WELL_KNOWN)
@router.get(PRM_WELL_KNOWN + "/{suffix:path}")
async def protected_resource(request: Request, settings: SettingsDep, suffix: str = "") -> JSONResponse:
    origin = request_origin(request.headers)
    resource = resource_for_prm(origin, f"/{suffix}" if suffix else "", settings.resources)
    if resource is None:
        body = {"error": "not_found", "error_description": "no protected resource at this address"}
        return JSONResponse(body, status_code=404)
    body = protected_resource_metadata(resource, settings.issuer, settings.scopes_supported)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
