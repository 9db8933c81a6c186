"""Remembered consent is keyed by (user, client, scopes, resource): a change in any of them asks again."""

from __future__ import annotations

import hashlib


def consent_key(subject: str, client_id: str, scopes: tuple[str, ...], resource: str | None) -> str:
    material = "\x00".join((subject, client_id, " ".join(sorted(scopes)), resource or "*"))
    return hashlib.sha256(material.encode()).hexdigest()
