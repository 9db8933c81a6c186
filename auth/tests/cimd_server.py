"""A real HTTPS server on 127.0.0.1 that serves client ID metadata documents, with a certificate from a CA made for
the test run (trusted by the app through AUTH_CIMD_CA_FILE). Each path answers as the test says and counts its hits."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMES = ("localhost", "cimd.test")
ADDRESSES = ("127.0.0.1", "::1")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for NAMES and ADDRESSES: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("mcpgw test CA"))
        .issuer_name(_name("mcpgw test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ADDRESSES]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(NAMES[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


@dataclass
class Answer:
    """How one path answers: `hold` keeps the answer back until the server is released (a slow server);
    `length` False sends no Content-Length (the body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False
    length: bool = True


class DocumentServer:
    def __init__(self, directory: Path) -> None:
        self.ca_file, cert_file, key_file = make_certificates(directory)
        self._answers: dict[str, Answer] = {}
        self._hits: Counter[str] = Counter()
        self._seen = threading.Condition()
        self.released = threading.Event()
        self.hosts_seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path
                with server._seen:
                    server._hits[path] += 1
                    server.hosts_seen.append(self.headers.get("Host", ""))
                    server._seen.notify_all()
                answer = server._answers.get(path, Answer(404, b"not found", {"Content-Type": "text/plain"}))
                if answer.hold:
                    server.released.wait(30)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.length:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):  # the app stopped reading (a refused oversize document)
                    self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/client.json", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def answer(self, path: str, answer: Answer) -> None:
        self._answers[path] = answer

    def serve_document(self, path: str, document: dict[str, Any], cache_control: str | None = None) -> None:
        headers = {"Content-Type": "application/json"}
        if cache_control:
            headers["Cache-Control"] = cache_control
        self.answer(path, Answer(body=json.dumps(document).encode(), headers=headers))

    def hits(self, path: str = "/client.json") -> int:
        with self._seen:
            return self._hits[path]

    def wait_for_hits(self, path: str, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while self._hits[path] < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{path} was fetched {self._hits[path]} times, expected {count}")
                self._seen.wait(left)

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
