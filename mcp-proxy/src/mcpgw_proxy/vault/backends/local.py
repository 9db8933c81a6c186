"""The two backends on this machine: the proxy's own environment (`env://NAME`) and files (`file:///run/secrets/x`)."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import Literal

from mcpgw_proxy.vault.backends.base import Document, SingleReads
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import Reference

MAX_FILE_BYTES = 1024 * 1024
_TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE, errno.ETIMEDOUT})


class EnvBackend(SingleReads):
    kind: Literal["env"] = "env"
    endpoint = "local"
    principal = "process"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def read(self, reference: Reference) -> Document:
        value = self._environ.get(reference.locator)
        if value is None:
            raise SecretError("not_found", "the proxy's environment has no such variable")
        return Document(value, None)

    def current_version(self, reference: Reference) -> str | None:
        return None  # a process's environment does not change under it


class FileBackend(SingleReads):
    """Docker and Kubernetes secret files. One trailing newline is dropped (editors and `echo` add it)."""

    kind: Literal["file"] = "file"
    endpoint = "local"
    principal = "process"

    def read(self, reference: Reference) -> Document:
        try:
            with open(reference.locator, "rb") as handle:
                info = os.fstat(handle.fileno())
                if info.st_size > MAX_FILE_BYTES:
                    raise SecretError("invalid", f"larger than {MAX_FILE_BYTES} bytes")
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _classify(exc, reference) from None
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise SecretError("invalid", "not UTF-8 text") from None
        return Document(text.removesuffix("\n"), _signature(info))

    def current_version(self, reference: Reference) -> str | None:
        try:
            return _signature(os.stat(reference.locator))
        except OSError as exc:
            raise _classify(exc, reference) from None


def _signature(info: os.stat_result) -> str:
    """Changes whenever the file is replaced or rewritten (Kubernetes swaps a symlinked directory)."""
    return f"{info.st_ino}-{info.st_size}-{info.st_mtime_ns}"


def _classify(exc: OSError, reference: Reference) -> SecretError:
    if isinstance(exc, FileNotFoundError):
        return SecretError("not_found", "no such file")
    if isinstance(exc, PermissionError):
        return SecretError("denied", "permission denied")
    if exc.errno in _TRANSIENT_ERRNOS:
        return SecretError("transient", errno.errorcode.get(exc.errno or 0, "I/O error"))
    return SecretError("invalid", type(exc).__name__)
