"""NATS over TLS (docs/architecture.md §6), against real nats-server processes configured by
`anjian nats config`'s code with certificates from `anjian tls`'s private CA: a federation runs
over mutual TLS; a client verifies the server against its CA; the server refuses a client
without a valid certificate of its CA, one that does not speak TLS, and one with a valid
certificate but no certified NATS identity."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from federation.jetstream import NATSTransport
from federation.transport import Credentials, Refused, TLSFiles, applied_subject
from node import config as config_mod
from node.keys import credentials
from node.replication.natsd import NatsServer
from node.tls import issue, make_ca
from tests.integration.federation import (
    Federation,
    Member,
    PrivateCA,
    register_enterprises,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LAYOUT = [
    ("province", "province", "130000", None),
    ("city", "city", "130100", "province"),
    ("county", "county", "130102", "city"),
]


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    f = Federation(root / "fed", LAYOUT, tls=PrivateCA(root / "ca"))
    try:
        f.start()
        yield f
    finally:
        f.close()


def of(member: Member) -> Credentials:
    return credentials(config_mod.load(member.directory, environ={}))


def connect(server: Member, creds: Credentials, url: str | None = None) -> None:
    """Connect to ``server``'s NATS with ``creds`` (the county's, changed) and ask what the
    tier applied of the county (raises if anything is refused)."""

    async def run() -> None:
        nc = await NATSTransport().connect(url or server.nats.url, "test", creds)
        try:
            await nc.request(applied_subject("130102"), b"130102", 5)
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_federation_runs_over_mutual_tls(fed):
    city = fed["city"]
    assert city.nats.url.startswith("tls://")
    conf = (city.nats.directory / "nats-server.conf").read_text()
    assert "verify: true" in conf and "ca_file" in conf
    register_enterprises(fed["county"], 10)
    wait_for(
        lambda: fed["province"].applied().get("130102") == 10,
        60,
        "the county's records reach the province over TLS",
        lambda: fed["province"].applied(),
    )
    connect(city, of(fed["county"]))  # the county's own credentials: certificate and nkey


def test_the_client_verifies_the_server_against_its_ca(fed, tmp_path):
    make_ca(tmp_path / "other")
    county = of(fed["county"])
    assert county.tls is not None
    elsewhere = replace(county, tls=replace(county.tls, ca=str(tmp_path / "other" / "ca.crt")))
    with pytest.raises(Refused, match=r"(?i)certificate verify failed"):
        connect(fed["city"], elsewhere)


def test_mutual_tls_refuses_a_client_without_a_valid_certificate(fed, tmp_path):
    city, county = fed["city"], of(fed["county"])
    assert county.tls is not None
    without = replace(county, tls=TLSFiles(county.tls.ca))
    with pytest.raises(Refused, match="requires a client certificate"):
        connect(city, without)
    make_ca(tmp_path / "other")  # a certificate for the right name from another CA
    cert, key = issue(tmp_path / "other", "intruder", ["127.0.0.1"], tmp_path, client=True)
    foreign = replace(county, tls=TLSFiles(county.tls.ca, str(cert), str(key)))
    with pytest.raises(Refused, match="requires a client certificate"):
        connect(city, foreign)
    plain = replace(county, tls=None)  # not configured for TLS at all
    with pytest.raises(Refused, match="the server requires TLS"):
        connect(city, plain, city.nats.url.replace("tls://", "nats://"))
    # a valid certificate is no authorisation: without a certified NATS identity, refused
    anonymous = replace(county, seed=None)
    with pytest.raises(Refused, match="Authorization Violation"):
        connect(city, anonymous)
    connect(city, county)  # and the county itself still gets in


def test_a_client_told_to_use_tls_never_talks_plain(fed, tmp_path):
    """A server that does not require TLS (another one, or one whose TLS was taken out) is
    not spoken to in plain text by a node whose configuration asks for TLS."""
    plain = NatsServer(tmp_path / "plain").start()
    try:
        with pytest.raises(Refused, match="does not require TLS"):
            connect(fed["city"], of(fed["county"]), plain.url)
    finally:
        plain.kill()
