"""The development identity provider: a username form, only ever on a loopback http issuer."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mcpgw_auth.idp.base import AllowEveryone
from mcpgw_auth.oauth.errors import UserFacingError
from mcpgw_auth.records import Identity
from mcpgw_auth.settings import Settings, is_loopback_host
from mcpgw_auth.web import browser
from mcpgw_auth.web.consent import pending_request
from mcpgw_auth.web.deps import Form, GatewayDep, Query
from mcpgw_auth.web.forms import single
from mcpgw_auth.web.pages import form_target

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class DevIdentityProvider:
    name = "dev"

    def __init__(self, settings: Settings) -> None:
        issuer = urlsplit(settings.issuer)
        if issuer.scheme != "http" or not is_loopback_host(issuer.hostname or ""):
            raise RuntimeError("the dev login refuses to run unless the issuer is a loopback http URL")
        self.access_policy = AllowEveryone()

    def login_url(self, request_id: str | None) -> str:
        return "/login" if request_id is None else f"/login?request={quote(request_id)}"

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/login")
        async def login_page(request: Request, gateway: GatewayDep, query: Query) -> Response:
            bid = browser.browser_id_or_new(gateway, request)
            request_id = single(query, "request")
            if request_id is None:  # signing in for the account page
                targets: tuple[str, ...] = ()
                csrf = browser.browser_csrf_token(bid, "login")
            else:
                pending, _ = await pending_request(gateway, request_id)
                targets, csrf = (form_target(pending.redirect_uri),), browser.csrf_token(pending, bid, "login")
            response = gateway.pages.render(
                "login_dev.html", form_targets=targets, request_id=request_id, csrf=csrf, error=None
            )
            browser.keep_browser_id(gateway, request, response, bid)
            return response

        @router.post("/login")
        async def login(request: Request, gateway: GatewayDep, form: Form) -> Response:
            bid, request_id, csrf = browser.browser_id(gateway, request), single(form, "request"), single(form, "csrf")
            if request_id is None:
                valid, next_url = browser.browser_csrf_ok(bid, "login", csrf), "/account"
            else:
                pending, _ = await pending_request(gateway, request_id)
                valid = browser.csrf_ok(pending, bid, "login", csrf)
                next_url = f"/consent?request={quote(pending.request_id)}"
            if not valid:
                raise UserFacingError("Request not accepted", "The form was not submitted from this browser.", 403)
            username = (single(form, "username") or "").strip()
            if not _USERNAME.fullmatch(username):
                raise UserFacingError("Invalid username", "Use 1-64 letters, digits, '.', '_' or '-'.")
            response = RedirectResponse(next_url, status_code=303, headers={"Cache-Control": "no-store"})
            await browser.start_session(gateway, response, Identity(subject=f"dev:{username}", username=username))
            return response

        return router
