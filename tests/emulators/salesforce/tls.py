"""Key material the Salesforce emulator is made with: an RSA key pair and certificate for the
JWT bearer flow (the connected app's certificate), and a self-signed TLS certificate for
127.0.0.1 (simple-salesforce only speaks https://). Made once per process: RSA generation
costs tens of milliseconds, and a test needs fresh state, not fresh keys."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str  # what the connector holds as a secret
    certificate_pem: str  # what the admin uploads to the connected app
    public_key_pem: str


def _make(common_name: str, san_ip: bool) -> tuple[str, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=30)))
    if san_ip:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False).add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                          critical=True)
    cert = builder.sign(key, hashes.SHA256())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, cert.public_bytes(serialization.Encoding.PEM).decode(), public.decode()


@functools.cache
def jwt_keys() -> KeyPair:
    """The connected app's certificate and the private key that signs the JWT assertions."""
    return KeyPair(*_make("learnloop-connected-app", san_ip=False))


@functools.cache
def server_files() -> tuple[str, str]:
    """(certificate file, key file) for the HTTPS server; the certificate is also the CA file
    a client trusts (`REQUESTS_CA_BUNDLE`, or `verify=` on its session)."""
    private, cert, _ = _make("127.0.0.1", san_ip=True)
    folder = Path(tempfile.mkdtemp(prefix="sf-emulator-tls-"))
    (folder / "cert.pem").write_text(cert)
    (folder / "key.pem").write_text(private)
    (folder / "key.pem").chmod(0o600)
    return str(folder / "cert.pem"), str(folder / "key.pem")
