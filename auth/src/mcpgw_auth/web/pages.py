"""Server-rendered pages: autoescaped Jinja2 templates, strict CSP, never framed, never cached."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from mcpgw_auth.oauth.text import for_display


def form_target(redirect_uri: str) -> str:
    """The CSP source for a client's redirect URI: browsers apply form-action to the redirect after a POST."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def see_other(location: str, status: int = 303) -> RedirectResponse:
    """A redirect that no cache keeps (each one carries a single-use request or a decision)."""
    return RedirectResponse(location, status_code=status, headers={"Cache-Control": "no-store"})


class Pages:
    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("mcpgw_auth", "templates"), autoescape=select_autoescape(default=True)
        )
        # `|display` on whatever a client or a user chose: controls and bidi overrides shown as U+FFFD, even in
        # records kept before registration refused them (Unicode TR #36 §2.1; the templates add <bdi> isolation).
        self._env.filters["display"] = for_display

    def render(
        self, template: str, status: int = 200, form_targets: tuple[str, ...] = (), **context: Any
    ) -> HTMLResponse:
        html = self._env.get_template(template).render(**context)
        form_action = " ".join(("'self'", *form_targets))
        csp = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
            f"form-action {form_action}; frame-ancestors 'none'"
        )
        headers = {
            "Content-Security-Policy": csp,
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        }
        return HTMLResponse(html, status_code=status, headers=headers)
