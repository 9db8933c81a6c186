"""Strict request-body parsing: the right content type, no surprises."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import Request

from mcpgw_auth.oauth.errors import OAuthError

FormData = dict[str, list[str]]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_form(request: Request) -> FormData:
    """RFC 6749 §3.2: token-style endpoints take application/x-www-form-urlencoded, UTF-8."""
    if _media_type(request) != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        text = (await request.body()).decode("utf-8")
        return parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the form body is malformed") from None


async def read_json(request: Request, error: str = "invalid_client_metadata") -> object:
    """RFC 7591 §3.1: registration bodies are JSON objects."""
    if _media_type(request) != "application/json":
        raise OAuthError("invalid_request", "the body must be application/json")
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise OAuthError(error, "the body is not valid JSON") from None  # type: ignore[arg-type]


def query_params(request: Request) -> FormData:
    """All values of every query parameter, so repeated parameters can be refused (RFC 6749 §3.1)."""
    out: FormData = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def single(form: FormData, name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise OAuthError("invalid_request", f"{name} must not be repeated")
    return values[0] if values else None
