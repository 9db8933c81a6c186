"""Protocol errors become HTTP responses here, and only here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mcpgw_auth.oauth.authorize import AuthorizationError, error_redirect
from mcpgw_auth.oauth.errors import InvalidClient, OAuthError, UserFacingError
from mcpgw_auth.web.pages import Pages

log = logging.getLogger("mcpgw_auth.web")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient):
        if exc.basic_attempted:
            headers["WWW-Authenticate"] = 'Basic realm="mcp-gateway"'  # RFC 6749 §5.2
    elif exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'  # RFC 6750 §3 (RFC 7592 §3)
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def install(app: FastAPI, pages: Pages, issuer: str) -> None:
    async def on_authorization_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthorizationError)
        return RedirectResponse(error_redirect(exc.redirect_uri, exc, exc.state, issuer), status_code=302)

    async def on_oauth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthError)
        return oauth_error_response(exc)

    async def on_user_facing(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UserFacingError)
        return pages.render("error.html", status=exc.status, title=exc.title, detail=exc.detail)

    async def on_validation(request: Request, exc: Exception) -> Response:
        return oauth_error_response(OAuthError("invalid_request", "malformed request"))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        body = {
            "error": "not_found" if exc.status_code == 404 else "invalid_request",
            "error_description": str(exc.detail),
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return JSONResponse({"error": "server_error", "error_description": "internal error"}, status_code=500)

    app.add_exception_handler(AuthorizationError, on_authorization_error)
    app.add_exception_handler(OAuthError, on_oauth_error)
    app.add_exception_handler(UserFacingError, on_user_facing)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
