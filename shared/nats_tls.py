"""A development certificate authority for NATS over TLS: what the compose setup makes on first run.

``ensure_dev_tls(directory, hosts)`` keeps, in ``directory``: ``ca.pem`` / ``ca-key.pem`` (the CA, 10 years) and
``server.pem`` / ``server-key.pem`` (the server's certificate for ``hosts``, 1 year, signed by the CA), all keys
mode 0600. Run again, it keeps what is valid and issues a new server certificate when the old one expires within
30 days or does not name every host asked for; ``rotate=True`` makes a new CA and certificate. Production takes
its certificates from cert-manager or a given Secret instead (deploy/k8s).
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS, SERVER_DAYS, RENEW_BEFORE = 3650, 365, timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    ca_key: Path
    cert: Path
    key: Path


def files_in(directory: Path) -> TlsFiles:
    return TlsFiles(
        directory / "ca.pem", directory / "ca-key.pem", directory / "server.pem", directory / "server-key.pem"
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _make_ca(files: TlsFiles, now: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hoithi development CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _key_pem(key), 0o600)
    _write(files.ca, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _make_server(files: TlsFiles, hosts: list[str], now: datetime) -> None:
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=SERVER_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.key, _key_pem(key), 0o600)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _server_current(files: TlsFiles, hosts: list[str], now: datetime) -> bool:
    if not (files.cert.exists() and files.key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(name in san for name in _names(hosts))


def ensure_dev_tls(directory: Path, hosts: list[str], *, rotate: bool = False) -> tuple[TlsFiles, list[str]]:
    """The CA and server certificate in ``directory``, made or renewed as needed; and what was (re)made."""
    files, now, made = files_in(directory), datetime.now(UTC), []
    ca_valid = (
        files.ca.exists()
        and files.ca_key.exists()
        and x509.load_pem_x509_certificate(files.ca.read_bytes()).not_valid_after_utc - now > RENEW_BEFORE
    )
    if rotate or not ca_valid:
        _make_ca(files, now)
        made.append("ca")
    if made or not _server_current(files, hosts, now):
        _make_server(files, hosts, now)
        made.append("server")
    return files, made


def server_tls_block(cert: str, key: str, *, timeout: float = 5.0) -> str:
    """nats-server's ``tls {}``: every client connection must be TLS, and TLS comes first (``handshake_first``:
    the server says nothing in clear, not even its INFO, and takes only a client that starts with the TLS
    handshake, so a man in the middle cannot strip TLS by rewriting INFO; the clients set ``tls_handshake_first``,
    shared/nats_auth.py)."""
    return "\n".join(
        [
            "tls {",
            f"  cert_file: {json.dumps(cert)}",
            f"  key_file: {json.dumps(key)}",
            '  min_version: "1.2"',
            f"  timeout: {timeout}",
            "  handshake_first: true",
            "}",
            "",
        ]
    )
