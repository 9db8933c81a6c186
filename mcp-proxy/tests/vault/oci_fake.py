"""A small local stand-in for OCI, speaking its wire protocol so the real `oci` SDK runs against it:

- the Secrets retrieval API (20190301): GetSecretBundle (`GET /20190301/secretbundles/{secretId}`) and
  GetSecretBundleByName (`POST /20190301/secretbundles/actions/getByName`), `versionNumber` / `stage` selectors,
  OCI's error body (`{"code", "message"}`, 404 NotAuthorizedOrNotFound);
- request signing (OCI's HTTP signatures, draft-cavage-http-signatures-08 §2.3 signing string, rsa-sha256): every
  secrets request must be signed by a known API key (`tenancy/user/fingerprint`) or a session key it federated;
- for instance principals, the instance metadata service (`/opc/v2/instance/region`, `/opc/v2/identity/*.pem`) and
  the federation endpoint (`POST /v1/x509`, signed by the instance's leaf certificate), which hands out a session token.

`fail_next` queues error statuses for the next secrets requests; `requests` records what arrived.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

API = "/20190301/secretbundles"
TENANCY = "ocid1.tenancy.oc1..aaaafaketenancy"


@dataclass
class FakeSecret:
    ocid: str
    vault_id: str
    name: str
    versions: dict[int, str] = field(default_factory=dict)
    stages: dict[str, int] = field(default_factory=dict)


def _certificate(key: rsa.RSAPrivateKey, common_name: str, unit: str | None) -> bytes:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    name = x509.Name(attributes)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@functools.cache
def _instance_identity() -> tuple[rsa.RSAPrivateKey, bytes, bytes]:
    """The instance's leaf key and certificate (tenancy in its OU, as OCI issues them), an intermediate: made once."""
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _certificate(leaf_key, "instance", f"opc-tenant:{TENANCY}")
    intermediate = _certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048), "ca", None)
    return leaf_key, leaf, intermediate


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{base64.urlsafe_b64encode(b'sig').decode()}"


class OciFake:
    def __init__(self) -> None:
        self.api_keys: dict[str, Any] = {}  # keyId -> public key
        self.secrets: dict[str, FakeSecret] = {}
        self.fail_next: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self.rejected_signatures = 0
        self._leaf_key, self.leaf_pem, self.intermediate_pem = _instance_identity()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_api_key(self, key_id: str, public_key: Any) -> None:
        self.api_keys[key_id] = public_key

    def add(self, vault_id: str, name: str, value: str) -> str:
        ocid = f"ocid1.vaultsecret.oc1.iad.{secrets.token_hex(12)}"
        self.secrets[ocid] = FakeSecret(ocid, vault_id, name, {1: value}, {"CURRENT": 1, "LATEST": 1})
        return ocid

    def rotate(self, ocid: str, value: str) -> int:
        with self._lock:
            secret = self.secrets[ocid]
            version = max(secret.versions) + 1
            secret.versions[version] = value
            secret.stages["PREVIOUS"] = secret.stages["CURRENT"]
            secret.stages["CURRENT"] = secret.stages["LATEST"] = version
            return version

    # Wire ------------------------------------------------------------------------------------------------------

    def verify(self, method: str, target: str, headers: Any, body: bytes) -> bool:
        """OCI request signing: the signing string over the listed headers, RSA PKCS#1 v1.5 with SHA-256."""
        fields = dict(
            part.split("=", 1)
            for part in headers.get("authorization", "").removeprefix("Signature ").split(",")
            if "=" in part
        )
        fields = {k.strip(): v.strip().strip('"') for k, v in fields.items()}
        key = self.api_keys.get(fields.get("keyId", ""))
        if key is None or fields.get("algorithm") != "rsa-sha256":
            return False
        body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if "x-content-sha256" in fields.get("headers", "") and headers.get("x-content-sha256") != body_hash:
            return False
        lines = []
        for name in fields.get("headers", "").split():
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {target}")
            else:
                lines.append(f"{name}: {headers.get(name, '')}")
        try:
            key.verify(
                base64.b64decode(fields["signature"]), "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return False
        return True

    def bundle(self, secret: FakeSecret, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if "versionNumber" in query:
            version = int(query["versionNumber"][0])
        else:
            version = secret.stages.get(query.get("stage", ["CURRENT"])[0], -1)
        if version not in secret.versions:
            return 404, {"code": "NotAuthorizedOrNotFound", "message": "no such secret version"}
        stages = [stage for stage, number in secret.stages.items() if number == version]
        content = base64.b64encode(secret.versions[version].encode()).decode()
        return 200, {
            "secretId": secret.ocid,
            "versionNumber": version,
            "versionName": None,
            "stages": stages,
            "timeCreated": "2026-01-01T00:00:00.000Z",
            "metadata": None,
            "secretBundleContent": {"contentType": "BASE64", "content": content},
        }

    def federate(self, body: dict[str, Any]) -> dict[str, Any]:
        session = serialization.load_pem_public_key(
            b"-----BEGIN PUBLIC KEY-----\n" + body["publicKey"].encode() + b"\n-----END PUBLIC KEY-----\n"
        )
        now = int(time.time())
        token = _jwt({"sub": "instance", "iat": now, "exp": now + 3600, "tenant": TENANCY, "jti": secrets.token_hex(8)})
        self.api_keys[f"ST${token}"] = session
        return {"token": token}


class _Handler(BaseHTTPRequestHandler):
    fake: OciFake

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("opc-request-id", secrets.token_hex(8))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.fake
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path.startswith("/opc/v2/"):  # the instance metadata service
            if self.headers.get("authorization") != "Bearer Oracle":
                self._send(401, {"code": "NotAuthenticated"})
                return
            documents = {
                "/opc/v2/instance/region": b"iad",
                "/opc/v2/identity/cert.pem": fake.leaf_pem,
                "/opc/v2/identity/intermediate.pem": fake.intermediate_pem,
                "/opc/v2/identity/key.pem": fake._leaf_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            }
            found = documents.get(url.path)
            self._send(200 if found else 404, found or {"code": "NotFound"}, "text/plain")
            return
        if url.path == "/v1/x509" and method == "POST":
            leaf = x509.load_pem_x509_certificate(fake.leaf_pem)
            fingerprint = ":".join(f"{b:02X}" for b in leaf.fingerprint(hashes.SHA1()))  # noqa: S303  # OCI's key id format
            fake.api_keys.setdefault(f"{TENANCY}/fed-x509/{fingerprint}", leaf.public_key())
            if not fake.verify(method, self.path, self.headers, body):
                fake.rejected_signatures += 1
                self._send(401, {"code": "NotAuthenticated", "message": "bad signature"})
                return
            self._send(200, fake.federate(json.loads(body)))
            return
        fake.requests.append((method, self.path))
        if not fake.verify(method, self.path, self.headers, body):
            fake.rejected_signatures += 1
            self._send(
                401,
                {
                    "code": "NotAuthenticated",
                    "message": "The required information to complete authentication was not provided or was incorrect.",
                },
            )
            return
        if fake.fail_next:
            self._send(fake.fail_next.pop(0), {"code": "InternalServerError", "message": "injected"})
            return
        secret: FakeSecret | None = None
        if method == "GET" and url.path.startswith(f"{API}/") and url.path.count("/") == 3:
            secret = fake.secrets.get(url.path.rsplit("/", 1)[1])
        elif method == "POST" and url.path == f"{API}/actions/getByName":
            name, vault = query.get("secretName", [""])[0], query.get("vaultId", [""])[0]
            secret = next((s for s in fake.secrets.values() if s.name == name and s.vault_id == vault), None)
        if secret is None:
            self._send(
                404,
                {"code": "NotAuthorizedOrNotFound", "message": "Authorization failed or requested resource not found."},
            )
            return
        self._send(*fake.bundle(secret, query))
