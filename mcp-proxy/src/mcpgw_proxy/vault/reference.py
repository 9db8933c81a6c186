"""The grammar of secret references (docs/vault.md "References") and the canonical keys they resolve under.
Pure: no I/O.

A declared value is either one whole reference or a string with `${reference}` parts in it:

    vault://secret/mcp/github#token            KV v2 mount `secret`, path `mcp/github`, key `token`
    vault://secret/mcp/github#token?version=3  a pinned version (`?version=3#token` is the same)
    Bearer ${vault://secret/mcp/x#token}       a reference inside a string; `$${` stands for a literal `${`
    env://NAME  file:///run/secrets/x  aws-sm://prod/db#password  keyring://service/user
    oci-vault://<vault-ocid-or-alias>/<secret-name>?stage=CURRENT   ocid1.vaultsecret.oc1.<region>.<id>

Path segments and keys are percent-decoded (RFC 3986 §2.1), so `%23`, `%3F` and `%2F` put `#`, `?` and `/` in them.
A `#key` picks a key of a key/value secret (KV v2 data, or a JSON object stored as text).
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import parse_qsl, unquote

from mcpgw_proxy.vault.errors import ReferenceSyntaxError

BackendKind = Literal["env", "file", "vault", "oci-vault", "aws-sm", "keyring"]
BACKENDS: tuple[BackendKind, ...] = ("env", "file", "vault", "oci-vault", "aws-sm", "keyring")
_BY_SCHEME: dict[str, BackendKind] = {kind: kind for kind in BACKENDS}

_SCHEME = r"(?:env|file|vault|oci-vault|aws-sm|keyring)://"
_OCID = r"ocid1\.vaultsecret\.[A-Za-z0-9._-]+"
_WHOLE = re.compile(rf"^(?:{_SCHEME}|ocid1\.vaultsecret\.)", re.IGNORECASE)
_EMBEDDED = re.compile(rf"\$\$\{{|\$\{{((?:{_SCHEME}|ocid1\.vaultsecret\.)[^}}]*)\}}", re.IGNORECASE)
_BARE_OCID = re.compile(rf"^{_OCID}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AWS_ID = re.compile(r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")
_OCI_STAGES = frozenset({"CURRENT", "PENDING", "LATEST", "PREVIOUS", "DEPRECATED"})
_AWS_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_QUERY_KEYS: dict[BackendKind, frozenset[str]] = {
    "vault": frozenset({"version"}),
    "oci-vault": frozenset({"version", "stage"}),
    "aws-sm": frozenset({"version", "stage"}),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """One parsed reference. Two spellings of the same secret compare equal (`text` is only for messages)."""

    backend: BackendKind
    locator: str
    field: str | None = None
    version: str | None = None  # None: the current version; "3"; "stage:PREVIOUS"; an AWS version id
    text: str = dataclasses.field(default="", compare=False)

    def key(self, principal: str) -> SecretKey:
        return SecretKey(self.backend, principal, self.locator, self.field, self.version)

    @property
    def pinned(self) -> bool:
        """A fixed version number or id never rotates; a stage (or no version at all) can move."""
        return self.version is not None and not self.version.startswith("stage:")


@dataclasses.dataclass(frozen=True, slots=True)
class DocumentKey:
    """What one backend read returns: every key of a KV path, one AWS or OCI secret, one file."""

    backend: BackendKind
    principal: str
    locator: str
    version: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class SecretKey:
    """The canonical key of a resolved value: caching, de-duplication and the persistent cache use it."""

    backend: BackendKind
    principal: str
    locator: str
    field: str | None
    version: str | None

    @property
    def document(self) -> DocumentKey:
        return DocumentKey(self.backend, self.principal, self.locator, self.version)

    def canonical(self) -> str:
        """An unambiguous text form (JSON array), used as AES-GCM associated data by the persistent cache."""
        return json.dumps([self.backend, self.principal, self.locator, self.field, self.version])


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    """A declared value: literal text and references, in order."""

    parts: tuple[str | Reference, ...]

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(part for part in self.parts if isinstance(part, Reference))

    def render(self, values: Mapping[Reference, str]) -> str:
        return "".join(part if isinstance(part, str) else values[part] for part in self.parts)


def parse_value(value: str) -> Template:
    """A declared value as a template; raises ReferenceSyntaxError for a malformed reference."""
    if _WHOLE.match(value):
        return Template((parse_reference(value),))
    parts: list[str | Reference] = []
    literal: list[str] = []
    position = 0
    for match in _EMBEDDED.finditer(value):
        literal.append(value[position : match.start()])
        position = match.end()
        if match.group(1) is None:
            literal.append("${")  # `$${` escapes a literal `${`
            continue
        if literal and "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(parse_reference(match.group(1)))
    literal.append(value[position:])
    if "".join(literal) or not parts:
        parts.append("".join(literal))
    return Template(tuple(parts))


def parse_reference(text: str) -> Reference:
    """One reference (a whole URI or a bare OCI secret OCID)."""
    if _BARE_OCID.match(text):
        return Reference("oci-vault", text, text=text)
    scheme, sep, body = text.partition("://")
    backend = _BY_SCHEME.get(scheme.lower())
    if not sep or backend is None:
        raise ReferenceSyntaxError(f"not a secret reference: {text!r}")
    raw_locator, query, fragment = _split_suffixes(body, text)
    version = _version(backend, query, text)
    field = _field(fragment, text)
    locator = _LOCATORS[backend](raw_locator, text)
    return Reference(backend, locator, field, version, text=text)


def _split_suffixes(body: str, text: str) -> tuple[str, str | None, str | None]:
    """Split `locator?query#fragment` (either order of query and fragment, each at most once)."""
    cut = min((i for i in (body.find("?"), body.find("#")) if i >= 0), default=len(body))
    locator, rest = body[:cut], body[cut:]
    query: str | None = None
    fragment: str | None = None
    while rest:
        marker, other = rest[0], "#" if rest[0] == "?" else "?"
        end = rest.find(other, 1)
        end = len(rest) if end < 0 else end
        part, rest = rest[1:end], rest[end:]
        if marker in part:
            raise ReferenceSyntaxError(f"a second {marker!r} in {text!r} (percent-encode it)")
        if marker == "?":
            if query is not None:
                raise ReferenceSyntaxError(f"more than one query in {text!r}")
            query = part
        else:
            if fragment is not None:
                raise ReferenceSyntaxError(f"more than one #key in {text!r}")
            fragment = part
    return locator, query, fragment


def _version(backend: BackendKind, query: str | None, text: str) -> str | None:
    if query is None:
        return None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ReferenceSyntaxError(f"malformed query in {text!r}") from None
    allowed = _QUERY_KEYS.get(backend, frozenset())
    if len(pairs) != 1 or pairs[0][0] not in allowed:
        names = " or ".join(f"?{name}=" for name in sorted(allowed)) or "no query"
        raise ReferenceSyntaxError(f"{text!r}: a {backend} reference takes {names}")
    name, value = pairs[0]
    if name == "stage":
        if backend == "oci-vault" and value.upper() in _OCI_STAGES:
            return f"stage:{value.upper()}"
        if backend == "aws-sm" and _AWS_STAGE.match(value):
            return f"stage:{value}"
        raise ReferenceSyntaxError(f"{text!r}: unknown stage {value!r}")
    if backend == "aws-sm":
        if not _AWS_STAGE.match(value):
            raise ReferenceSyntaxError(f"{text!r}: malformed version id")
        return value
    if not value.isdigit() or int(value) < 1:
        raise ReferenceSyntaxError(f"{text!r}: version must be a positive integer")
    return str(int(value))


def _field(fragment: str | None, text: str) -> str | None:
    if fragment is None:
        return None
    field = unquote(fragment)
    if not field:
        raise ReferenceSyntaxError(f"empty #key in {text!r}")
    return field


def _segments(raw: str, text: str) -> list[str]:
    segments = [unquote(segment) for segment in raw.strip("/").split("/")]
    if any(segment in ("", ".", "..") for segment in segments):
        raise ReferenceSyntaxError(f"empty, '.' or '..' path segment in {text!r}")
    return segments


def _env(raw: str, text: str) -> str:
    if not _ENV_NAME.match(raw):
        raise ReferenceSyntaxError(f"{text!r}: env://NAME needs a variable name")
    return raw


def _file(raw: str, text: str) -> str:
    if raw.startswith("localhost/"):
        raw = raw[len("localhost") :]
    if not raw.startswith("/"):
        raise ReferenceSyntaxError(f"{text!r}: use file:///absolute/path")  # RFC 8089 §2: empty or localhost host
    path = posixpath.normpath(unquote(raw))
    if path == "/" or "\0" in path:
        raise ReferenceSyntaxError(f"{text!r}: not a file path")
    return path


def _vault(raw: str, text: str) -> str:
    segments = _segments(raw, text)
    if len(segments) < 2:
        raise ReferenceSyntaxError(f"{text!r}: vault://<mount>/<path> needs a mount and a path")
    return "/".join(segments)


def _oci(raw: str, text: str) -> str:
    segments = _segments(raw, text)
    if len(segments) == 1 and _BARE_OCID.match(segments[0]):
        return segments[0]
    if len(segments) != 2:
        raise ReferenceSyntaxError(f"{text!r}: oci-vault://<vault-ocid-or-alias>/<secret-name>, or a secret OCID")
    return "/".join(segments)


def _aws(raw: str, text: str) -> str:
    name = unquote(raw)
    if not _AWS_ID.match(name):
        raise ReferenceSyntaxError(f"{text!r}: aws-sm://<name-or-arn>")
    return name


def _keyring(raw: str, text: str) -> str:
    service, sep, user = raw.rpartition("/")
    if not sep or not service or not user or "/" in unquote(user):
        raise ReferenceSyntaxError(f"{text!r}: keyring://<service>/<user>")
    return f"{unquote(service)}/{unquote(user)}"


_LOCATORS = {
    "env": _env,
    "file": _file,
    "vault": _vault,
    "oci-vault": _oci,
    "aws-sm": _aws,
    "keyring": _keyring,
}
