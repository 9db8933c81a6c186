"""The JSON Web Key Set (RFC 7517 §5): every public key whose tokens may still be live."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcpgw_auth.web.deps import KeysDep

router = APIRouter()


@router.get("/jwks")
@router.get("/.well-known/jwks.json")
async def jwks(keys: KeysDep) -> JSONResponse:
    keys.refresh()
    return JSONResponse(keys.keys.jwks, headers={"Cache-Control": "public, max-age=60"})
