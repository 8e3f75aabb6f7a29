"""node/tls.py: a private CA, the certificates it issues (names, usages, private keys, nothing
overwritten), and TLS contexts that verify servers by name and, with mutual TLS, clients."""

import asyncio
import ssl
import stat

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from node.cli.main import main
from node.errors import ConfigError
from node.tls import client_context, issue, make_ca, server_context


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = make_ca(root / "ca")
    server = issue(root / "ca", "node", ["localhost", "127.0.0.1"], root / "certs")
    client = issue(root / "ca", "county", [], root / "certs", client=True, server=False)
    return {"root": root, "ca": ca, "server": server, "client": client}


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_ca_is_ecdsa_p256_for_ten_years_with_a_private_key(pki):
    cert_path, key_path = pki["ca"]
    assert mode(key_path) == 0o600 and mode(cert_path.parent) == 0o700
    cert = load(cert_path)
    assert cert.public_key().curve.name == "secp256r1"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    years = (cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365
    assert 9.9 < years < 10.1


def test_a_server_certificate_names_its_hosts_and_a_client_certificate_its_user(pki):
    cert_path, key_path = pki["server"]
    assert mode(key_path) == 0o600
    cert = load(cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert 700 < (cert.not_valid_after_utc - cert.not_valid_before_utc).days < 740
    client = load(pki["client"][0])
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert client.subject.rfc4514_string() == "CN=county"


def test_nothing_is_overwritten_and_bad_requests_say_what_to_do(pki, tmp_path):
    root = pki["root"]
    before = pki["server"][1].read_bytes()
    with pytest.raises(ConfigError, match="never overwritten"):
        issue(root / "ca", "node", ["localhost"], root / "certs")
    assert pki["server"][1].read_bytes() == before
    with pytest.raises(ConfigError, match="never overwritten"):
        make_ca(root / "ca")
    with pytest.raises(ConfigError, match="--host"):
        issue(root / "ca", "nameless", [], tmp_path)
    with pytest.raises(ConfigError, match="neither a DNS name"):
        issue(root / "ca", "bad", ["a b"], tmp_path)
    with pytest.raises(ConfigError, match="anjian tls ca"):
        issue(tmp_path / "no-ca", "x", ["localhost"], tmp_path)


async def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, host: str) -> bytes:
    """One TLS connection to a local echo server; what came back."""

    async def echo(reader, writer):
        try:
            writer.write(await reader.read(5))
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server)
    port = srv.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=host
        )
        writer.write(b"hello")
        data = await reader.read(5)
        writer.close()
        return data
    finally:
        srv.close()


async def test_contexts_verify_the_server_by_name_and_clients_with_mutual_tls(pki):
    (ca, _), server, client = pki["ca"], pki["server"], pki["client"]
    plain = server_context(*server)
    assert await _handshake(plain, client_context(ca), "localhost") == b"hello"
    with pytest.raises(ssl.SSLCertVerificationError):  # a name the certificate does not carry
        await _handshake(plain, client_context(ca), "elsewhere.example")
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not trust the CA
        await _handshake(plain, ssl.create_default_context(), "localhost")
    mutual = server_context(*server, ca=ca, verify_clients=True)
    assert await _handshake(mutual, client_context(ca, *client), "localhost") == b"hello"
    try:  # without a client certificate the server ends the connection (TLS 1.3: after the
        # client's side of the handshake, so the client sees an alert or an end of stream)
        data = await _handshake(mutual, client_context(ca), "localhost")
    except (ssl.SSLError, ConnectionError):
        data = None
    assert data in (None, b""), "the server answered a client without a certificate"


def test_contexts_refuse_mismatched_missing_or_public_keys(pki, tmp_path):
    server, client = pki["server"], pki["client"]
    with pytest.raises(ConfigError, match="cannot be used together"):
        server_context(server[0], client[1])
    with pytest.raises(ConfigError, match="does not exist"):
        server_context(tmp_path / "none.crt", server[1])
    with pytest.raises(ConfigError, match="needs the CA"):
        server_context(*server, verify_clients=True)
    public = tmp_path / "public.key"
    public.write_bytes(server[1].read_bytes())
    public.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        server_context(server[0], public)


def test_the_cli_makes_a_ca_and_certificates_and_prefers_an_existing_pki(tmp_path):
    run = CliRunner()
    r = run.invoke(main, ["tls", "--help"])
    assert r.exit_code == 0 and "PKI" in r.output
    r = run.invoke(main, ["tls", "ca", str(tmp_path / "ca")])
    assert r.exit_code == 0 and "PKI" in r.stderr
    hosts = ["--host", "node.example", "--host", "10.1.2.3"]
    out = ["--out", str(tmp_path / "out")]
    r = run.invoke(main, ["tls", "issue", str(tmp_path / "ca"), "web", *hosts, "--client", *out])
    assert r.exit_code == 0, r.stderr
    assert '"server"' in r.stdout and '"client"' in r.stdout and "10.1.2.3" in r.stdout
    assert mode(tmp_path / "out" / "web.key") == 0o600
    r = run.invoke(main, ["tls", "issue", str(tmp_path / "ca"), "web", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "--host" in r.stderr
