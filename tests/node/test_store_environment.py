"""The event store takes its settings from node.toml (and its ANJIAN_ overrides) only:
eventsourcing's own variables left in the environment (COMPRESSOR_TOPIC, CIPHER_TOPIC,
PERSISTENCE_MODULE, SQLITE_DBNAME, ..., also with eventsourcing's APPLICATION_ prefix) change
neither how nor where the node writes its log."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from eventsourcing.cryptography import AESCipher

from federation.suite import key_id, load_public
from federation.verify import Grant, Trust
from node import config as config_mod
from node.audit.verify import audit_node
from node.service import Node
from node.users import Role, add_user
from tests.conftest import make_node_dir
from tests.factories import accident, enterprise, js


@pytest.fixture
def elsewhere(tmp_path):
    """Where the variables point: nothing may be written here."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


@pytest.fixture
def eventsourcing_environ(elsewhere):
    return {
        # how events are stored
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(16),
        "IS_SNAPSHOTTING_ENABLED": "y",
        "CREATE_TABLE": "n",
        "ORIGINATOR_ID_TYPE": "text",
        "AGGREGATE_CACHE_MAXSIZE": "1",
        # where they are stored
        "PERSISTENCE_MODULE": "eventsourcing.popo",
        "SQLITE_DBNAME": str(elsewhere / "events.db"),
        "POSTGRES_SCHEMA": "elsewhere",
        # eventsourcing looks up APPLICATION_<NAME> before <NAME>: over the node's own settings
        "APPLICATION_PERSISTENCE_MODULE": "eventsourcing.popo",
        "APPLICATION_SQLITE_DBNAME": str(elsewhere / "application.db"),
        "APPLICATION_POSTGRES_DBNAME": "elsewhere",
    }


def trust_of(config):
    public = load_public(config.directory / config_mod.PUBLIC_KEY_FILE)
    return Trust([Grant(config.node.origin, public, key_id(public))])


def record_and_verify(config, clock, environ, elsewhere, monkeypatch):
    """Record with the variables set, verify the log, then read it back without them."""
    with monkeypatch.context() as m:
        for name, value in environ.items():
            m.setenv(name, value)
        node = Node(config, clock=clock)
        try:
            node.execute("enterprise.register", js(enterprise()), user="zhang")
            acc = node.execute("accident.report", js(accident()), user="li")
            assert node.show(acc["id"])["version"] == 1
            # stored as the node stores events: plain JSON, neither compressed nor encrypted
            states = node.log.query("SELECT state FROM stored_events")
            assert len(states) == 2
            assert all(isinstance(json.loads(bytes(r["state"])), dict) for r in states)
            if config.store.backend == "postgres":
                sql = "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?"
                assert node.log.query(sql, ("elsewhere",)) == []
        finally:
            node.close()
        assert list(elsewhere.iterdir()) == []
        report = audit_node(config, trust_of(config))
        assert report["ok"] and report["events_checked"] == 2, report["failures"]
    node = Node(config, clock=clock)
    try:
        assert node.show(acc["id"])["version"] == 1
    finally:
        node.close()


def test_a_node_records_and_verifies_with_eventsourcing_variables_set(
    load_config, clock, eventsourcing_environ, elsewhere, monkeypatch
):
    record_and_verify(load_config(), clock, eventsourcing_environ, elsewhere, monkeypatch)


@pytest.mark.parametrize(
    "names",
    [
        ["COMPRESSOR_TOPIC"],
        ["CIPHER_TOPIC", "CIPHER_KEY"],
        ["CIPHER_TOPIC"],  # without its key: eventsourcing refuses to start
        ["CREATE_TABLE"],
        ["APPLICATION_PERSISTENCE_MODULE"],
        ["APPLICATION_SQLITE_DBNAME"],
    ],
    ids="+".join,
)
def test_each_variable_alone(node_dir, clock, eventsourcing_environ, elsewhere, monkeypatch, names):
    environ = {name: eventsourcing_environ[name] for name in names}
    config = config_mod.load(node_dir, environ={})
    record_and_verify(config, clock, environ, elsewhere, monkeypatch)


def cli(*args, env):
    r = subprocess.run(
        [sys.executable, "-m", "node", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.slow
def test_the_cli_with_eventsourcing_variables_set(tmp_path, eventsourcing_environ, elsewhere):
    env = {**os.environ, **eventsourcing_environ}
    county = tmp_path / "county"
    cli("init", county, "--tier", "county", "--region", "130102", env=env)
    (tmp_path / "e.json").write_text(js(enterprise()), encoding="utf-8")
    out = cli("record", county, "enterprise.register", "--json", tmp_path / "e.json", env=env)
    assert json.loads(out)["position"] == 1
    verify = ("audit", "verify", county, "--key", county / "node.pub", "--json")
    report = json.loads(cli(*verify, env=env))
    assert report["ok"] and report["events_checked"] == 1, report["failures"]
    assert list(elsewhere.iterdir()) == []
    plain = {k: v for k, v in os.environ.items() if k not in eventsourcing_environ}
    assert json.loads(cli(*verify, env=plain))["ok"]  # the same log as without the variables
    assert json.loads(cli("status", county, env=plain))["event_count"] == 1


@pytest.mark.slow
def test_a_serving_node_with_eventsourcing_variables_set(
    tmp_path, eventsourcing_environ, elsewhere, monkeypatch
):
    from tests.integration.helpers import Server

    directory = make_node_dir(tmp_path / "county")
    config = config_mod.load(directory, environ={})
    token = add_user(config.users_file, "clerk", Role.WRITER)
    for name, value in eventsourcing_environ.items():
        monkeypatch.setenv(name, value)  # the server process inherits them
    server = Server(directory)
    try:
        req = urllib.request.Request(
            server.url + "/api/v1/enterprises",
            data=js(enterprise()).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201 and json.loads(resp.read())["position"] == 1
    finally:
        assert server.stop() == 0
    assert list(elsewhere.iterdir()) == []
    report = audit_node(config, trust_of(config))
    assert report["ok"] and report["events_checked"] == 1, report["failures"]
