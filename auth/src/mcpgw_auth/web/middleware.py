"""ASGI middleware: request ids, a body size limit, an access log line without query strings."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from mcpgw_auth.logs import request_id
from mcpgw_auth.web.verify import Receive, Scope, Send

log = logging.getLogger("mcpgw_auth.access")

_RID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Middleware:
    """Outermost wrapper of the FastAPI app (not of /verify, which must stay lean)."""

    def __init__(self, app: object, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # type: ignore[operator]
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _RID.fullmatch(given) else secrets.token_hex(8)
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _too_large(send, rid)
            self._log(scope, 413, start)
            request_id.reset(token)
            return
        # Bodies here are small (forms, registration JSON): read all of it, bounded, before the app runs.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body:
                await _too_large(send, rid)
                self._log(scope, 413, start)
                request_id.reset(token)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict[str, object]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        async def tagged_send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]  # type: ignore[misc]
            await send(message)

        try:
            await self.app(scope, replay, tagged_send)  # type: ignore[operator]
        finally:
            self._log(scope, status, start)
            request_id.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, start: float) -> None:
        log.info(
            "%s %s %d",
            scope["method"],
            scope["path"],
            status,
            extra={"duration_ms": round((time.perf_counter() - start) * 1000, 2)},
        )


async def _too_large(send: Send, rid: str) -> None:
    body = json.dumps({"error": "invalid_request", "error_description": "request body too large"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
