"""Just enough JSON-RPC 2.0 to route messages: what kind, which id, which method, which progress token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["request", "notification", "response"]
RequestId = str | int

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
UNSUPPORTED_PROTOCOL_VERSION = -32022  # MCP 2026-07-28 basic/versioning: names the versions served


_decode = json.JSONDecoder().decode


class InvalidMessage(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True, frozen=True)
class Message:
    raw: bytes  # one line, compact enough to forward as is
    kind: Kind
    id: RequestId | None
    method: str | None
    progress_token: RequestId | None


def parse(raw: bytes) -> Message:
    """Classify one JSON-RPC message (JSON-RPC 2.0 §4, §5). Batches are not part of MCP since 2025-06-18."""
    try:
        data = _decode(raw.decode())  # UTF-8 only (RFC 8259 §8.1); json.loads would also guess UTF-16 and -32
    except (ValueError, RecursionError):
        raise InvalidMessage(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidMessage(INVALID_REQUEST, "Invalid Request: expected one JSON-RPC message object")
    if data.get("jsonrpc") != "2.0":
        raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
    ident = data.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
        raise InvalidMessage(INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
    method = data.get("method")
    if method is not None:
        if not isinstance(method, str):
            raise InvalidMessage(INVALID_REQUEST, "Invalid Request: method must be a string")
        token = _progress_token(data)
        kind: Kind = "notification" if "id" not in data else "request"
        if kind == "request" and ident is None:
            raise InvalidMessage(INVALID_REQUEST, "Invalid Request: a request id must not be null")
        return Message(_one_line(raw, data), kind, ident, method, token)
    if "result" in data or "error" in data:
        return Message(_one_line(raw, data), "response", ident, None, None)
    raise InvalidMessage(INVALID_REQUEST, "Invalid Request: neither a request, a notification nor a response")


def _progress_token(data: dict[str, Any]) -> RequestId | None:
    params = data.get("params")
    if not isinstance(params, dict):
        return None
    if data.get("method") == "notifications/progress":
        token = params.get("progressToken")
    else:
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def _one_line(raw: bytes, data: dict[str, Any]) -> bytes:
    """stdio framing forbids embedded newlines (MCP stdio transport): re-encode only when there are any."""
    if b"\n" in raw or b"\r" in raw:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return raw.strip()


def error_response(ident: RequestId | None, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}).encode()
