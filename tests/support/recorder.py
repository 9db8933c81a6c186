"""An ASGI wrapper that writes down every HTTP request an application answered, in arrival order."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from support.asgi import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Seen:
    method: str
    path: str
    status: int | None = None
    form: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = f" {self.form}" if self.form else ""
        return f"{self.method} {self.path} -> {self.status}{extra}"


class Recorder:
    """Records method, path, status and, for form posts, the values of `form_fields` (e.g. grant_type)."""

    def __init__(self, app: ASGIApp, form_fields: tuple[str, ...] = ()) -> None:
        self.app = app
        self.form_fields = form_fields
        self._seen: list[Seen] = []
        self._lock = threading.Lock()

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry = Seen(scope["method"], scope["path"])
        with self._lock:
            self._seen.append(entry)
        is_form = dict(scope["headers"]).get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded")
        body = bytearray()

        async def receive_and_keep() -> Message:
            message = await receive()
            if is_form and message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    values = parse_qs(body.decode("latin-1"))
                    entry.form = {k: values[k][0] for k in self.form_fields if k in values}
            return message

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = int(message["status"])
            await send(message)

        await self.app(scope, receive_and_keep, send_and_note)
