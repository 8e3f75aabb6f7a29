"""The nats-server configuration of a tier made from its certified hierarchy
(node.replication.natsauth, `anjian nats config`): who is let in, what each may publish and
subscribe to, the files (checked by nats-server itself), and keeping them current while the
node serves."""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation.keys import ROOT, build_trust, certify, revoke
from federation.memory import matches
from federation.nkey import generate_seed, public_of
from federation.suite import SigningKey, load_key, public_pem
from node import config as config_mod
from node.cli.main import main
from node.cli.nats import set_federation
from node.keys import read_nats_public
from node.replication.natsauth import (
    ARCHIVE_READER,
    AUTH_FILE,
    CHILD,
    CONFIG_FILE,
    TIER,
    Authoriser,
    ServerTLS,
    User,
    authorised,
    render_authorisation,
    write_config,
)
from node.replication.natsd import nats_server_binary
from node.service import Node
from tests.conftest import make_node_dir


def nkey() -> str:
    return public_of(generate_seed())


class Hierarchy:
    """Root → national, backup, province 130000 → city 130100 → counties: 130102 (with a NATS
    key), 130104 (certified before NATS identities), 130105 (revoked), 130106 (sharing
    130102's NATS key), and a county 130203 of another city, certified by the province."""

    def __init__(self) -> None:
        self.root = SigningKey.generate()
        self.keys = {o: SigningKey.generate() for o in ALL}
        self.nats = {o: nkey() for o in ALL}
        self.nats["130106"] = self.nats["130102"]
        k = self.keys
        self.docs = [
            self._cert(self.root, ROOT, "000000", "national"),
            self._cert(self.root, ROOT, "backup", "backup", region="000000"),
            self._cert(self.root, ROOT, "130000", "province"),
            self._cert(k["130000"], "130000", "130100", "city", at_seq=1),
            self._cert(k["130000"], "130000", "130203", "county", at_seq=2),
            self._cert(k["130100"], "130100", "130102", "county", at_seq=1),
            self._cert(k["130100"], "130100", "130104", "county", at_seq=2, nats=False),
            self._cert(k["130100"], "130100", "130105", "county", at_seq=3),
            revoke(
                k["130100"], "130100", origin="130105", key=k["130105"].key_id, last_seq=7, at_seq=4
            ),
        ]
        self.trust, problems = build_trust(self.root.public, self.docs)
        assert problems == []

    def _cert(
        self,
        by: SigningKey,
        by_origin: str,
        origin: str,
        tier: str,
        region: str | None = None,
        at_seq: int = 0,
        nats: bool = True,
    ) -> bytes:
        return certify(
            by,
            by_origin,
            origin=origin,
            region=region or origin,
            tier=tier,
            public=self.keys[origin].public,
            at_seq=at_seq,
            nats=self.nats[origin] if nats else None,
        )

    def users(self, origin: str, tier: str, region: str) -> tuple[list[User], list[Any]]:
        return authorised(origin, tier, region, self.nats[origin], self.trust)


ALL = ["000000", "backup", "130000", "130100", "130102", "130104", "130105", "130106", "130203"]


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    h = Hierarchy()
    h.docs.insert(
        6, h._cert(h.keys["130100"], "130100", "130106", "county", at_seq=5)
    )  # 130106: the same NATS key as 130102
    h.trust, problems = build_trust(h.root.public, h.docs)
    assert problems == []
    return h


def by_origin(users: list[User]) -> dict[str, User]:
    return {u.origin: u for u in users}


def allowed(patterns: tuple[str, ...] | None, subject: str) -> bool:
    return patterns is None or any(matches(p, subject) for p in patterns)


def test_a_city_lets_in_itself_and_its_certified_counties_only(h):
    users, left = h.users("130100", "city", "130100")
    assert [(u.origin, u.role) for u in users] == [("130100", TIER)]
    reasons = {x.origin: str(x.reason) for x in left}
    assert "--nats-key" in reasons["130104"]  # an old certification: it must be re-certified
    assert reasons["130105"] == "every key of it is revoked"
    assert "also 130106's" in reasons["130102"] and "also 130102's" in reasons["130106"]
    # the province, the national centre, the backup and another city's county: not its own
    assert set(reasons) == {"130102", "130104", "130105", "130106"}


def test_a_child_may_publish_and_subscribe_to_its_own_subjects_only(h):
    h2 = Hierarchy()  # without the shared key
    users, _ = h2.users("130100", "city", "130100")
    county = by_origin(users)["130102"]
    assert county.role == CHILD and county.subscribe == ("_INBOX.130102.>",)
    for subject in (
        "anjian.up.130102.env.130102",
        "anjian.up.130102.cp.130102",
        "anjian.applied.130102",
        "anjian.history.130102",
        "$JS.API.CONSUMER.INFO.ANJIAN_DOWN.anjian-down-130102",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102.anjian.down.env.*.all",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102-area.anjian.down.env.*.13.1301.130102",
        "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_DOWN.anjian-down-130102-area",
        "$JS.ACK.ANJIAN_DOWN.anjian-down-130102-area.1.7.7.1700000000.0",
        "$JS.API.CONSUMER.DELETE.ANJIAN_DOWN.anjian-down-130102",
        "$JS.API.DIRECT.GET.ANJIAN_UP.anjian.up.130102.env.130102",
    ):
        assert allowed(county.publish, subject), subject
    for subject in (
        "anjian.up.130104.env.130104",  # another child's uplink
        "anjian.up.130100.env.130102",
        "anjian.applied.130104",
        "anjian.history.130104",
        "anjian.down.env.130102.all",  # publishing downward in the tier's name
        "$JS.API.STREAM.DELETE.ANJIAN_UP",
        "$JS.API.STREAM.PURGE.ANJIAN_DOWN",
        "$JS.API.STREAM.UPDATE.ANJIAN_UP",
        "$JS.API.STREAM.MSG.GET.ANJIAN_UP",  # any message by sequence
        "$JS.API.STREAM.MSG.DELETE.ANJIAN_UP",
        "$JS.API.DIRECT.GET.ANJIAN_UP.anjian.up.130104.env.130104",
        "$JS.API.DIRECT.GET.ANJIAN_UP",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN",  # an ephemeral consumer: any filter
        "$JS.API.CONSUMER.DURABLE.CREATE.ANJIAN_DOWN.anjian-down-130102",  # filter unpinned
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102-area.anjian.down.>",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102-area.anjian.down.env.*.13.1301.130104",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102-area.anjian.down.env.*.13.1301.*",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130102.anjian.down.env.*.13.1301.130104",
        "$JS.API.CONSUMER.CREATE.ANJIAN_UP.anjian-receiver.anjian.up.>",
        "$JS.API.CONSUMER.INFO.ANJIAN_UP.anjian-receiver",
        "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_UP.anjian-receiver",
        "$JS.ACK.ANJIAN_UP.anjian-receiver.1.1.1.1700000000.0",
        "$JS.API.CONSUMER.DELETE.ANJIAN_DOWN.anjian-down-130104",
        "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_DOWN.anjian-down-130104-area",
        "$JS.API.CONSUMER.CREATE.ANJIAN_ARCHIVE.anjian-backup-130102.anjian.archive.>",
        "_INBOX.130104.x.y",  # answering another's request
    ):
        assert not allowed(county.publish, subject), subject
    for subject in ("anjian.applied.*", "anjian.history.*", "anjian.up.>", ">", "_INBOX.>"):
        assert not allowed(county.subscribe, subject), subject
    assert allowed(county.subscribe, "_INBOX.130102.AbCd.1")


def test_the_national_centre_lets_in_its_area_and_the_backup_centre_to_the_archive(h):
    users, _ = h.users("000000", "national", "000000")
    found = by_origin(users)
    assert found["000000"].role == TIER and found["000000"].publish is None
    assert {o for o, u in found.items() if u.role == CHILD} == {"130000", "130100", "130203"}
    backup = found["backup"]
    assert backup.role == ARCHIVE_READER and backup.subscribe == ("_INBOX.backup.>",)
    follow = "$JS.API.CONSUMER.CREATE.ANJIAN_ARCHIVE.anjian-backup-backup.anjian.archive.>"
    assert allowed(backup.publish, follow)
    assert allowed(backup.publish, "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_ARCHIVE.anjian-restore-backup")
    assert allowed(backup.publish, "$JS.API.STREAM.INFO.ANJIAN_ARCHIVE")
    for subject in (
        "anjian.up.backup.env.backup",
        "anjian.applied.backup",
        "$JS.API.STREAM.INFO.ANJIAN_UP",
        "$JS.API.STREAM.DELETE.ANJIAN_ARCHIVE",
        "$JS.API.CONSUMER.CREATE.ANJIAN_ARCHIVE",
        "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-backup.anjian.down.env.*.all",
        "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_ARCHIVE.anjian-backup-other",
    ):
        assert not allowed(backup.publish, subject), subject
    # a province's downward area is its province
    province = found["130000"]
    area = "$JS.API.CONSUMER.CREATE.ANJIAN_DOWN.anjian-down-130000-area.anjian.down.env.*.13.>"
    assert area in (province.publish or ())


def test_the_backup_centre_lets_in_only_the_national_centre_to_restore(h):
    users, _ = h.users("backup", "backup", "000000")
    found = by_origin(users)
    assert set(found) == {"backup", "000000"}
    national = found["000000"]
    assert national.role == ARCHIVE_READER
    assert allowed(
        national.publish, "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_ARCHIVE.anjian-restore-000000"
    )
    assert not allowed(
        national.publish, "$JS.API.CONSUMER.INFO.ANJIAN_ARCHIVE.anjian-backup-000000"
    )


def test_a_province_lets_in_its_cities_and_counties_not_the_centres(h):
    users, _ = h.users("130000", "province", "130000")
    assert {u.origin for u in users} == {"130000", "130100", "130203"}


def test_the_authorisation_file_has_no_anonymous_user(h):
    text = render_authorisation(Hierarchy().users("130100", "city", "130100")[0])
    assert "no_auth_user" not in text and text.count("nkey:") == 2
    assert "authorization {" in text


# -- the files, through a node directory --------------------------------------------------------
def city_dir(tmp_path: Path, h: Hierarchy, port: int = 4333) -> Path:
    """A city node whose trust directory holds the hierarchy's documents, its own key and NATS
    identity certified beside the hierarchy's 130100 key."""
    d = make_node_dir(tmp_path / "city", "city", "130100")
    toml = d / config_mod.CONFIG_FILE
    toml.write_text(set_federation(toml.read_text(), "nats", f"nats://127.0.0.1:{port}"))
    (d / "trust").mkdir()
    (d / "trust" / "root.pub").write_bytes(public_pem(h.root.public))
    own = certify(
        h.keys["130000"],
        "130000",
        origin="130100",
        region="130100",
        tier="city",
        public=load_key(d / "node.key").public,
        nats=read_nats_public(d / "nats.pub"),
        at_seq=3,
    )
    for i, doc in enumerate([*h.docs, own]):
        (d / "trust" / f"{i}.doc").write_bytes(doc)
    return d


def test_write_config_is_private_idempotent_and_accepted_by_nats_server(tmp_path):
    h = Hierarchy()
    d = city_dir(tmp_path, h)
    config = config_mod.load(d, environ={})
    out = tmp_path / "server"
    report = write_config(config, out)
    assert report["changed"] is True and report["listen"] == "127.0.0.1:4333"
    assert [u["origin"] for u in report["users"]] == ["130100", "130102"]
    conf, auth = out / CONFIG_FILE, out / AUTH_FILE
    for path in (conf, auth):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "store").stat().st_mode) == 0o700
    text = conf.read_text()
    assert 'include "authorisation.conf"' in text and "no_auth_user" not in text
    assert f'store_dir: "{out.resolve() / "store"}"' in text and "max_payload" in text
    assert "pid_file" in text and "tls" not in text
    assert write_config(config, out)["changed"] is False  # the same again: nothing rewritten
    nats_server = shutil.which("nats-server")
    if nats_server:  # the server itself accepts it
        r = subprocess.run([nats_server, "-c", str(conf), "-t"], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
    # TLS: mutual, written into the server block; a host name listens everywhere
    (tmp_path / "c.crt").write_text("x")
    (tmp_path / "c.key").write_text("x")
    tls = ServerTLS(tmp_path / "c.crt", tmp_path / "c.key", tmp_path / "c.crt", verify=True)
    toml = d / config_mod.CONFIG_FILE
    toml.write_text(set_federation(toml.read_text(), "nats", "tls://city.example:4444"))
    report = write_config(config_mod.load(d, environ={}), out, tls=tls)
    text = conf.read_text()
    assert report["listen"] == "0.0.0.0:4444"
    assert "tls {" in text and "verify: true" in text and "ca_file" in text


def test_the_cli_writes_saves_and_says_whom_it_left_out(tmp_path):
    h = Hierarchy()
    d = city_dir(tmp_path, h)
    out = tmp_path / "srv"
    r = CliRunner().invoke(main, ["nats", "config", str(d), "--out", str(out), "--save"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["saved"] == f'server_dir = "{out.resolve()}"'
    assert config_mod.load(d, environ={}).federation.server_dir == str(out.resolve())
    assert "left out: 130104: certified without a NATS key" in r.stderr
    assert report["start"] == f"{nats_server_binary()} -c {out.resolve() / CONFIG_FILE}"
    again = CliRunner().invoke(main, ["nats", "config", str(d)])  # to server_dir now
    assert again.exit_code == 0 and json.loads(again.stdout)["changed"] is False
    assert "node_toml" not in json.loads(again.stdout)
    bad = CliRunner().invoke(main, ["nats", "config", str(d), "--verify-clients"])
    assert bad.exit_code == 2 and "--tls-ca" in bad.stderr
    county = make_node_dir(tmp_path / "county")
    r = CliRunner().invoke(main, ["nats", "config", str(county)])
    assert r.exit_code == 1 and "runs no NATS server" in r.stderr


def test_set_federation_replaces_or_adds_a_setting():
    text = '[node]\norigin = "x"\n\n[federation]\nbatch = 1000\n\n[readings]\npath = "r"\n'
    once = set_federation(text, "server_dir", "/srv/nats")
    assert '[federation]\nserver_dir = "/srv/nats"\nbatch = 1000\n' in once
    assert set_federation(once, "server_dir", "/other").count("server_dir") == 1
    assert set_federation('[node]\norigin = "x"\n', "nats_key", "k").endswith(
        '[federation]\nnats_key = "k"\n'
    )


def test_a_serving_tier_rewrites_its_authorisation_when_a_child_is_certified(tmp_path):
    h = Hierarchy()
    d = city_dir(tmp_path, h)
    out = tmp_path / "srv"
    config = config_mod.load(d, environ={})
    write_config(config, out)
    node = Node(config)

    async def run(fn: Any, *args: Any) -> Any:
        return fn(*args)

    try:
        part = Authoriser(node, out, run, run)
        asyncio.run(part.look())
        assert part.connected and part.last_error is None
        before = (out / AUTH_FILE).read_text()
        newcomer = SigningKey.generate()
        fresh = nkey()
        cert = certify(
            node.key,
            "130100",
            origin="130107",
            region="130107",
            tier="county",
            public=newcomer.public,
            nats=fresh,
            at_seq=node.log.tree()[0] + 1,
        )
        node.record_key_document(cert, user="admin")
        asyncio.run(part.look())
        after = (out / AUTH_FILE).read_text()
        assert fresh not in before and fresh in after
        (out / CONFIG_FILE).unlink()  # a server directory without its configuration: said
        node.record_key_document(
            revoke(
                node.key,
                "130100",
                origin="130107",
                key=newcomer.key_id,
                last_seq=0,
                at_seq=node.log.tree()[0] + 1,
            ),
            user="admin",
        )
        with pytest.raises(Exception, match="anjian nats config"):
            asyncio.run(part.look())
    finally:
        node.close()
