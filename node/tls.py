"""Certificates for HTTPS and NATS over TLS: a small private certificate authority (ECDSA P-256)
and the server and client certificates it issues, for a deployment without a PKI of its own
(an existing PKI is preferred: its certificates work unchanged), and the ``ssl`` contexts a
server or a client of the node uses with such files.

Files: a CA directory holds ``ca.crt`` and ``ca.key``; an issued certificate is ``NAME.crt``
with its key ``NAME.key``. Keys are PEM PKCS#8, unencrypted (servers start unattended), mode
0600; nothing existing is ever overwritten."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from domain.base import CHINA
from domain.i18n import N_, Text, _
from node.access import private_dir, write_private
from node.errors import ConfigError, said

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_DAYS = 3650  # ten years: the CA is made once per deployment
CERT_DAYS = 730  # two years for servers and clients: renew with `anjian tls issue`
SKEW = timedelta(minutes=5)  # valid a little before now: clocks of the other side differ
PREFERRED = N_(
    "a private CA for deployments without a PKI of their own; where your organisation has a "
    "PKI, have it issue the certificates instead (they work unchanged)"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DNS = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})*$")


def make_ca(
    directory: Path, name: str = "anjian private CA", days: int = CA_DAYS
) -> tuple[Path, Path]:
    """Create a CA in ``directory`` (made 0700 if new): ``ca.crt`` and ``ca.key`` (0600).
    Returns (certificate, key); refuses a directory that already holds a CA."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    _refuse_existing(cert_path, key_path, _("a CA"))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "anjian"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + timedelta(days=days))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    private_dir(directory)
    write_private(key_path, _key_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def issue(
    ca_directory: Path,
    name: str,
    hosts: Iterable[str],
    out_directory: Path,
    client: bool = False,
    server: bool = True,
    days: int = CERT_DAYS,
) -> tuple[Path, Path]:
    """Issue ``NAME.crt`` and ``NAME.key`` (0600) into ``out_directory`` (made 0700 if new),
    signed by the CA in ``ca_directory``. A server certificate names every host it answers
    as (DNS names and IP addresses, at least one); a client certificate (mutual TLS) carries
    ``name`` as its common name. Returns (certificate, key)."""
    if not _NAME.match(name):
        raise ConfigError(
            _(
                "certificate name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                "(it names the files NAME.crt and NAME.key)",
                name=name,
            )
        )
    if not (client or server):
        raise ConfigError(
            _(
                "a certificate is for a server (give each name or address it is reached by: "
                "--host), for a client of mutual TLS (--client), or both"
            )
        )
    names = _subject_alt_names(list(hosts))
    if server and not names:
        raise ConfigError(
            _(
                "a server certificate needs the names clients reach it by: give --host "
                "(a DNS name or an IP address) once for each"
            )
        )
    out_directory = Path(out_directory)
    cert_path, key_path = out_directory / f"{name}.crt", out_directory / f"{name}.key"
    _refuse_existing(cert_path, key_path, _("a certificate {name!r}", name=name))
    ca_cert, ca_key = _load_ca(Path(ca_directory))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    private_dir(out_directory)
    write_private(key_path, _key_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def describe(cert_path: Path) -> dict[str, object]:
    """What a certificate file says: subject, issuer, validity, hosts, usages."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        hosts += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        hosts = []
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usages = [
            {
                ExtendedKeyUsageOID.SERVER_AUTH: "server",
                ExtendedKeyUsageOID.CLIENT_AUTH: "client",
            }.get(oid, oid.dotted_string)
            for oid in eku
        ]
    except x509.ExtensionNotFound:
        usages = ["ca"]
    return {
        "certificate": str(cert_path),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "hosts": hosts,
        "usages": usages,
    }


# -- ssl contexts ------------------------------------------------------------------------------
def server_context(
    cert: Path, key: Path, ca: Path | None = None, verify_clients: bool = False
) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or later) with this certificate (chain) and key. With
    ``verify_clients``, clients must present a certificate that ``ca`` signed (mutual TLS)."""
    if verify_clients and ca is None:
        raise ConfigError(_("verifying client certificates needs the CA that signs them"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, Path(cert), Path(key))
    if ca is not None:
        _load_ca_file(context, Path(ca))
    if verify_clients:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A TLS client context that trusts the servers ``ca`` signed (their host names checked),
    presenting ``cert``/``key`` to servers that require mutual TLS."""
    if (cert is None) != (key is None):
        raise ConfigError(_("a client certificate goes with its key: give both or neither"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ca_file(context, Path(ca))
    if cert is not None and key is not None:
        _load_chain(context, Path(cert), Path(key))
    return context


def check_key_file(key: Path) -> None:
    """Refuse a private key that any user of the machine may read (group access is left to
    the operator: a PKI's keys are often shared with a service group)."""
    try:
        mode = key.stat().st_mode
    except OSError as e:
        raise ConfigError(
            _("cannot read the TLS key {key}: {error}", key=key, error=e.strerror)
        ) from None
    if mode & 0o004:
        raise ConfigError(
            _(
                "the TLS key {key} is readable by every user of this machine "
                "(mode {mode}); make it private: chmod 600 {key}",
                key=key,
                mode=format(mode & 0o777, "04o"),
            )
        )


# -- helpers -----------------------------------------------------------------------------------
def _subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip() for h in hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if len(host) > 253 or not _DNS.match(host):
            raise ConfigError(
                _(
                    "--host {host!r} is neither a DNS name (like node.example.gov.cn) nor an IP "
                    "address (like 10.1.2.3 or ::1)",
                    host=host,
                )
            )
        names.append(x509.DNSName(host.lower()))
    return names


def _refuse_existing(cert: Path, key: Path, what: Text) -> None:
    present = [str(p) for p in (cert, key) if p.exists()]
    if len(present) == 1:
        raise ConfigError(
            _(
                "{file} already exists: {what} is never overwritten; choose another directory "
                "or name, or remove the old files yourself once nothing uses them",
                file=present[0],
                what=what,
            )
        )
    if present:
        raise ConfigError(
            _(
                "{file} and {other} already exist: {what} is never overwritten; choose another "
                "directory or name, or remove the old files yourself once nothing uses them",
                file=present[0],
                other=present[1],
                what=what,
            )
        )


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not (cert_path.is_file() and key_path.is_file()):
        raise ConfigError(
            _(
                "{directory} holds no CA ({cert} and {key}); make one with "
                "`anjian tls ca {directory}`",
                directory=directory,
                cert=CA_CERT,
                key=CA_KEY,
            )
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            _(
                "{directory}: the CA files cannot be read ({error})",
                directory=directory,
                error=said(e),
            )
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(
            _("{file}: the CA key is not an ECDSA key made by `anjian tls ca`", file=key_path)
        )
    if datetime.now(UTC) >= cert.not_valid_after_utc:
        expired = cert.not_valid_after_utc.astimezone(CHINA).date().isoformat()
        raise ConfigError(
            _("the CA in {directory} expired on {date}", directory=directory, date=expired)
        )
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    for path in (cert, key):
        if not path.is_file():
            raise ConfigError(
                _(
                    "the TLS file {file} does not exist; issue a certificate with your PKI or "
                    "`anjian tls issue CA_DIR NAME --host HOST --out DIR`",
                    file=path,
                )
            )
    check_key_file(key)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise ConfigError(
            _(
                "the TLS certificate {cert} and key {key} cannot be used together ({error}): "
                "is the key the one the certificate was issued for?",
                cert=cert,
                key=key,
                error=e.reason,
            )
        ) from None


def _load_ca_file(context: ssl.SSLContext, ca: Path) -> None:
    if not ca.is_file():
        raise ConfigError(_("the CA certificate {file} does not exist", file=ca))
    try:
        context.load_verify_locations(cafile=os.fspath(ca))
    except ssl.SSLError as e:
        raise ConfigError(
            _("{file} is not a CA certificate in PEM ({error})", file=ca, error=e.reason)
        ) from None
