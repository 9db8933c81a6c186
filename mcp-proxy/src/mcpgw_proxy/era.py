"""The two MCP eras: recognising a modern (2026-07-28, stateless) request, validating it, and shaping its answers.

Pure functions over decoded JSON and header bytes; the transport decides, these say. What a modern request must
carry and how its headers must agree with its body is the 2026-07-28 text (basic/index §_meta, basic/transports/
streamable-http §Request Metadata and §Server Validation); a refusal is an `EraError` carrying its wire code.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcpgw_proxy.jsonrpc import RequestId

MODERN_VERSIONS = ("2026-07-28",)
LEGACY_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
SERVED_VERSIONS = (
    *MODERN_VERSIONS,
    *reversed(LEGACY_VERSIONS),
)  # newest first: what -32022 and server/discover advertise

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
# The per-request protocol fields (basic/index §_meta): what a modern request says of itself, not of its work.
ENVELOPE_KEYS = frozenset({PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, LOG_LEVEL_KEY})

INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

# Mcp-Name mirrors this parameter of these methods (streamable-http §Standard Request Headers).
NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# CacheableResult: these results carry ttlMs and cacheScope (changelog, minor change 5).
CACHEABLE_METHODS = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/read", "resources/templates/list"}
)
# Methods 2026-07-28 removed; a stateless child is shared by the user's requests, so none may change its state.
REMOVED_METHODS = frozenset({"ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"})
# Server-to-client requests, and the client capability each needs (client/elicitation, sampling, roots).
CAPABILITY_OF = {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}

# server/utilities/logging: syslog severities, least severe first.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

_BASE64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>[A-Za-z0-9+/=]*)\?=$")


class EraError(Exception):
    """A modern request refused before it reaches a child: HTTP status, JSON-RPC code, message and data."""

    def __init__(self, status: int, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data


@dataclass(slots=True, frozen=True)
class ModernRequest:
    id: RequestId
    method: str
    version: str
    capabilities: Mapping[str, Any]
    log_level: str | None


def meta_of(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    params = data.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta if isinstance(meta, dict) else None


def is_modern(data: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> bool:
    """A request outside a session is modern when its `_meta` names a protocol version, or its MCP-Protocol-Version
    header names no session-era one (it then lacks the `_meta` it needs, and is told so)."""
    meta = meta_of(data)
    if meta is not None and PROTOCOL_VERSION_KEY in meta:
        return True
    header = headers.get(b"mcp-protocol-version")
    return header is not None and header.decode("latin-1").strip() not in LEGACY_VERSIONS


def unsupported_version(requested: str) -> EraError:
    """UnsupportedProtocolVersionError (versioning §Protocol Version Negotiation), listing both eras' versions."""
    return EraError(
        400,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": list(SERVED_VERSIONS), "requested": requested[:64]},
    )


def decode_header_value(value: str) -> str | None:
    """An `Mcp-Name` value, its `=?base64?...?=` form decoded (streamable-http §Value Encoding); None if malformed."""
    match = _BASE64_SENTINEL.fullmatch(value)
    if match is None:
        return value
    try:
        decoded = base64.b64decode(match["payload"], validate=True)
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def validate(ident: RequestId, data: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> ModernRequest:
    """The modern request's envelope and headers, checked in the order the SDKs check them: `_meta` shape (-32602),
    headers against the body (-32020), then the version (-32022). Raises EraError."""
    method = data.get("method")
    assert isinstance(method, str)
    meta = meta_of(data)
    missing = [k for k in (PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY) if meta is None or k not in meta]
    if meta is None or missing:
        # basic/index §_meta: "A request missing any required field is malformed ... 400 Bad Request".
        raise EraError(400, INVALID_PARAMS, f"Invalid params: _meta lacks {', '.join(missing)}")
    version = meta[PROTOCOL_VERSION_KEY]
    capabilities = meta[CLIENT_CAPABILITIES_KEY]
    header = headers.get(b"mcp-protocol-version")
    # streamable-http §Server Validation: a required header missing, or not equal to the body, is HeaderMismatch.
    if header is None or header.decode("latin-1").strip() != version:
        raise EraError(400, HEADER_MISMATCH, "Header mismatch: MCP-Protocol-Version does not match _meta's version")
    method_header = headers.get(b"mcp-method")
    if method_header is None or method_header.decode("latin-1").strip() != method:
        raise EraError(400, HEADER_MISMATCH, "Header mismatch: Mcp-Method does not match the request's method")
    name_param = NAME_PARAMS.get(method)
    if name_param is not None:
        params = data.get("params")
        expected = params.get(name_param) if isinstance(params, dict) else None
        name_header = headers.get(b"mcp-name")
        if expected is not None:
            got = decode_header_value(name_header.decode("latin-1").strip()) if name_header is not None else None
            if got != expected:
                raise EraError(400, HEADER_MISMATCH, f"Header mismatch: Mcp-Name does not match params.{name_param}")
    if not isinstance(version, str):
        raise EraError(400, INVALID_PARAMS, "Invalid params: the protocol version must be a string")
    if version not in MODERN_VERSIONS:
        raise unsupported_version(version)
    if not isinstance(capabilities, dict):
        raise EraError(400, INVALID_PARAMS, "Invalid params: clientCapabilities must be an object")
    level = meta.get(LOG_LEVEL_KEY)
    return ModernRequest(ident, method, version, capabilities, level if isinstance(level, str) else None)


def missing_capability(request: ModernRequest, server_method: str | None) -> EraError | None:
    """MissingRequiredClientCapabilityError when the server asks for what the client did not declare (basic/index
    §_meta: -32021 with `data.requiredCapabilities`)."""
    capability = CAPABILITY_OF.get(server_method or "")
    if capability is None or capability in request.capabilities:
        return None
    return EraError(
        400,
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"Missing required client capability: {capability}",
        {"requiredCapabilities": {capability: {}}},
    )


def wants_log(request: ModernRequest, notification: Mapping[str, Any]) -> bool:
    """Whether a log message goes to this request: only when its `_meta` asked for a level (servers MUST NOT emit
    them otherwise, changelog major change 5), and only at that level or above."""
    if request.log_level not in LOG_LEVELS:
        return False
    params = notification.get("params")
    level = params.get("level") if isinstance(params, dict) else None
    return level in LOG_LEVELS and LOG_LEVELS.index(level) >= LOG_LEVELS.index(request.log_level)


# Answers ----------------------------------------------------------------------------------------------------------


def complete(
    method: str, result: dict[str, Any], server_info: Any, ttl_ms: int, cache_scope: str = "private"
) -> dict[str, Any]:
    """A legacy child's result as a modern one: `resultType` (basic/index §ResultType), `ttlMs` and `cacheScope` on
    cacheable results, and the server's identity in `_meta`."""
    result.setdefault("resultType", "complete")
    if method in CACHEABLE_METHODS:
        result.setdefault("ttlMs", ttl_ms)
        result.setdefault("cacheScope", cache_scope)
    if method == "tools/list" and isinstance(result.get("tools"), list):
        # changelog minor change 3: a deterministic order, so clients and prompt caches can rely on it.
        result["tools"].sort(key=lambda tool: str(tool.get("name", "")) if isinstance(tool, dict) else "")
    if server_info is not None:
        meta = result.get("_meta")
        if not isinstance(meta, dict):
            meta = result["_meta"] = {}
        meta.setdefault(SERVER_INFO_KEY, server_info)
    return result


def discover(initialize_result: Mapping[str, Any], ttl_ms: int) -> dict[str, Any]:
    """DiscoverResult (server/discover) from the wrapped server's initialize result: both eras' versions, its
    capabilities, its identity and instructions."""
    result: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": list(SERVED_VERSIONS),
        "capabilities": initialize_result.get("capabilities") or {},
        "ttlMs": ttl_ms,
        "cacheScope": "private",
    }
    if initialize_result.get("serverInfo") is not None:
        result["_meta"] = {SERVER_INFO_KEY: initialize_result["serverInfo"]}
    if isinstance(initialize_result.get("instructions"), str):
        result["instructions"] = initialize_result["instructions"]
    return result
