"""A node's NATS identity (node.keys, `anjian init`, `anjian keys generate`, `anjian keys
certify`): an nkey seed of its own beside its signing key, readable by its owner only; the
certification carries it; and what a part does when a server refuses it."""

from __future__ import annotations

import asyncio
import json
import logging
import stat

import pytest
from click.testing import CliRunner

from federation.canonical import decode
from federation.memory import MemoryTransport
from federation.nkey import public_of
from federation.transport import Connection
from node import config as config_mod
from node.cli.main import main
from node.cli.nats import set_federation
from node.errors import ConfigError
from node.keys import credentials, load_nats_seed, read_nats_public
from node.replication.part import Part
from node.service import Node


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_init_makes_a_nats_identity_of_its_own(tmp_path):
    d = tmp_path / "county"
    r = run("init", d, "--tier", "county", "--region", "130102")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["nats_public_file"] == str(d / "nats.pub")
    assert stat.S_IMODE((d / "nats.nk").stat().st_mode) == 0o600
    seed = load_nats_seed(d / "nats.nk")
    assert public_of(seed) == read_nats_public(d / "nats.pub")
    assert b"PRIVATE KEY" not in seed  # not the node's signing key
    assert "certify" in r.stderr


def test_keys_generate_adds_the_nats_identity_a_node_lacks(tmp_path):
    d = tmp_path / "county"
    assert run("init", d, "--tier", "county", "--region", "130102").exit_code == 0
    (d / "nats.nk").unlink()
    (d / "nats.pub").unlink()
    r = run("keys", "generate", d)
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["nats"] == read_nats_public(d / "nats.pub") and "key_id" not in made
    again = run("keys", "generate", d)
    assert again.exit_code == 1 and "has its keys" in again.stderr


def test_a_seed_readable_by_others_or_not_a_seed_is_refused(tmp_path):
    d = tmp_path / "county"
    assert run("init", d, "--tier", "county", "--region", "130102").exit_code == 0
    (d / "nats.nk").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_nats_seed(d / "nats.nk")
    (d / "nats.nk").chmod(0o600)
    (d / "nats.nk").write_text("SAsomething")
    with pytest.raises(ConfigError, match="nkey"):
        load_nats_seed(d / "nats.nk")
    with pytest.raises(ConfigError, match="anjian keys generate"):
        load_nats_seed(d / "missing.nk")


def test_certify_takes_the_nats_key_beside_the_node_key(tmp_path):
    root, county = tmp_path / "root", tmp_path / "county"
    assert run("keys", "root-init", root).exit_code == 0
    assert run("init", county, "--tier", "province", "--region", "130000").exit_code == 0
    base = ["keys", "certify", "--root-key", root / "root.key", "--origin", "130000"]
    base += ["--region", "130000", "--tier", "province"]
    r = run(*base, "--public", county / "node.pub", "--out", tmp_path / "a.doc")
    assert r.exit_code == 0, r.output
    expected = read_nats_public(county / "nats.pub")
    assert json.loads(r.stdout)["nats"] == expected
    body = decode(decode((tmp_path / "a.doc").read_bytes())["body"])
    assert body["subject"]["nats"] == expected
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "node.pub").write_bytes((county / "node.pub").read_bytes())
    r = run(*base, "--key", alone / "node.pub", "--out", tmp_path / "b.doc")
    assert r.exit_code == 0 and json.loads(r.stdout)["nats"] is None
    assert "cannot connect to its parent's NATS" in r.stderr
    r = run(
        *base,
        "--key",
        alone / "node.pub",
        "--nats-key",
        county / "nats.pub",
        "--out",
        tmp_path / "c.doc",
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["nats"] == expected


def test_credentials_name_the_inbox_and_the_tls_files(tmp_path):
    d = tmp_path / "county"
    assert run("init", d, "--tier", "county", "--region", "130102").exit_code == 0
    creds = credentials(config_mod.load(d, environ={}))
    assert creds.inbox == "_INBOX.130102" and creds.seed and creds.tls is None
    toml = d / "node.toml"
    toml.write_text(set_federation(toml.read_text(), "tls_cert", "tls/c.crt"))
    with pytest.raises(ConfigError, match="tls_ca"):
        credentials(config_mod.load(d, environ={}))
    text = set_federation(toml.read_text(), "tls_ca", "/etc/anjian/ca.crt")
    toml.write_text(set_federation(text, "tls_key", "tls/c.key"))
    tls = credentials(config_mod.load(d, environ={})).tls
    assert tls is not None and tls.ca == "/etc/anjian/ca.crt"
    assert tls.cert == str(d.resolve() / "tls/c.crt") and tls.key == str(d.resolve() / "tls/c.key")


class Idle(Part):
    name = "idle"

    async def session(self, nc: Connection) -> None:
        await asyncio.sleep(3600)


def test_a_part_refused_by_its_server_says_why_once_and_keeps_trying(tmp_path, caplog):
    d = tmp_path / "county"
    assert run("init", d, "--tier", "county", "--region", "130102").exit_code == 0
    node = Node(config_mod.load(d, environ={}))
    broker = MemoryTransport()
    broker.refused = "Authorization Violation"

    async def call(fn, *args):  # type: ignore[no-untyped-def]
        return fn(*args)

    part = Idle(node, "nats://parent:4222", call, call, broker)

    async def for_a_while() -> None:
        task = asyncio.create_task(part.run())
        await asyncio.sleep(0.2)
        assert not part.connected and part.last_error == "Authorization Violation"
        broker.refused = None  # certified and reloaded: it gets in on its next attempt
        for _ in range(100):
            if part.connected:
                break
            await asyncio.sleep(0.05)
        connected = part.connected
        task.cancel()
        assert connected

    try:
        with caplog.at_level(logging.ERROR, "anjian.federation"):
            asyncio.run(for_a_while())
    finally:
        node.close()
    assert [r.message for r in caplog.records].count(
        "idle: Authorization Violation at nats://parent:4222; trying again"
    ) == 1
