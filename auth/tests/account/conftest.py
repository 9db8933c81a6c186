"""Account page and admin CLI tests reuse the endpoint tests' harness (the real app, driven over HTTP)."""

from __future__ import annotations

from ..web.conftest import env, key_template, make_env, public_client, tokens

__all__ = ["env", "key_template", "make_env", "public_client", "tokens"]
