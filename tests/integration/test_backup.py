"""The backup centre and node recovery over real nats-server processes and real `anjian serve`
nodes (docs/architecture.md §6 "Archive", §8): a disaster drill at the national centre, and a
county that lost its disk taking its history back from its parent."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federation.keys import certify, revoke
from federation.suite import load_key, load_public
from node import config as config_mod
from node.config import NodeSection
from node.keys import generate_node_key, read_nats_public
from tests.factories import accident, js
from tests.integration.federation import (
    Federation,
    Member,
    can_connect,
    closing_node,
    connect_as,
    converged,
    register_enterprises,
    wait_for,
)
from tests.servers import Deadline

# each test's own waits add up to at most ~490 s: the federation's start 120 s, the waits for
# the logs to travel (sharing 150 s in the disaster drill), a stop 30 s, the CLI commands (120 s
# in all), a node's restart 30 s, the kills at the end 5 s a process (the disaster drill 460 s,
# the recovery drill 490 s). On a busy 2-core machine they take 25-60 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(540)]

LAYOUT = [
    ("national", "national", "000000", None),
    ("backup", "backup", "000000", "national"),
    ("city", "city", "130100", "national"),
    ("county", "county", "130102", "city"),
]


@pytest.fixture
def fed(tmp_path):
    f = Federation(tmp_path / "fed", LAYOUT)
    yield f
    f.close()


def anjian(*args: object, ok: bool = True, timeout: float = 60) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "node", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert (r.returncode == 0) == ok, r.stderr[-3000:]
    return json.loads(r.stdout) if ok else {"stderr": r.stderr}


def digest(directory: Path, timeout: float = 60) -> str:
    return anjian("projections", "digest", directory, timeout=timeout)["digest"]


def archived(member) -> int:
    """Envelopes on an archive stream."""

    async def count() -> int:
        nc = await connect_as(member)
        try:
            info = await nc.jetstream().stream_info(
                "ANJIAN_ARCHIVE", subjects_filter="anjian.archive.env.>"
            )
        finally:
            await nc.close()
        return sum((info.state.subjects or {}).values())

    return asyncio.run(count())


def fresh_node(directory: Path, origin: str, tier: str, region: str, parent: str | None) -> None:
    """What an operator makes with `anjian init` on a new disk: configuration and a new key."""
    directory.mkdir()
    section = NodeSection(origin=origin, tier=tier, region=region, parent=parent)  # type: ignore[arg-type]
    (directory / config_mod.CONFIG_FILE).write_text(config_mod.render(section), encoding="utf-8")
    generate_node_key(directory)


def test_disaster_drill_the_national_centre_rebuilt_from_the_backup_centre(fed, tmp_path):
    f = fed
    f.start()
    register_enterprises(f["county"], 300)
    with closing_node(f["county"]) as county:
        county.execute("accident.report", js(accident()), user="clerk")  # receipts at each tier
    travel = Deadline(150)  # the four waits below: once the first holds, the rest soon do
    wait_for(
        converged(f, "national", ["130102", "130100"]),
        travel.left(90),
        "the national centre has the county's and the city's logs",
        lambda: (f["national"].applied(), f["county"].applied()),
    )
    national = f["national"]
    wait_for(
        lambda: f["backup"].applied() == national.applied(),
        travel.left(90),
        "the backup centre holds everything the national centre holds",
        lambda: (f["backup"].applied(), national.applied()),
    )

    def signed(member):  # every origin's checkpoints it keeps
        return {
            (r["origin"], r["size"]) for r in member.query("SELECT origin, size FROM checkpoints")
        }

    wait_for(
        lambda: signed(f["backup"]) == signed(national),
        travel.left(60),
        "the backup centre keeps every checkpoint",
        lambda: signed(national) ^ signed(f["backup"]),
    )
    total = sum(national.applied().values())
    wait_for(
        lambda: archived(f["backup"]) == total,
        travel.left(90),
        "the backup centre republished it all",
        lambda: archived(f["backup"]),
    )
    f.stop()  # closing checkpoints signed; then the national centre is lost, NATS and all
    cli = Deadline(120)  # the six commands below: a few seconds each on a busy machine
    before = digest(national.directory, cli.left())
    assert digest(f["backup"].directory, cli.left()) == before  # the same view at both centres
    held = national.applied()
    national.nats.kill()
    shutil.rmtree(national.directory)
    shutil.rmtree(national.nats.directory / "store")

    new = tmp_path / "national-restored"
    fresh_node(new, "000000", "national", "000000", None)
    root_pub = tmp_path / "root.pub"
    shutil.copy(f["backup"].directory / "trust" / "root.pub", root_pub)
    # the backup centre's NATS lets in only certified identities: the root certifies the new
    # national key and NATS identity (from the sequence after the one the backup holds), the
    # backup's operator installs it there and has its server authorise it
    cert = certify(
        f.root_key,
        "root",
        origin="000000",
        region="000000",
        tier="national",
        public=load_public(new / "node.pub"),
        nats=read_nats_public(new / "nats.pub"),
        from_seq=held["000000"] + 1,
    )
    (tmp_path / "national.cert").write_bytes(cert)
    anjian(
        "keys", "install", f["backup"].directory, tmp_path / "national.cert", "--root-key", root_pub
    )
    authorised = anjian("nats", "config", f["backup"].directory, "--reload")
    assert {"origin": "000000", "role": "archive"}.items() <= authorised["users"][-1].items()
    assert authorised["reloaded"] is True
    restored = Member("restored", "national", "000000", new)
    wait_for(
        lambda: can_connect(f["backup"], restored), 30, "the backup's NATS lets the new one in"
    )
    report = anjian(
        "backup",
        "restore",
        new,
        "--from",
        f["backup"].nats.url,
        "--root-key",
        root_pub,
        timeout=cli.left(),
    )
    assert report["quarantined"] == [] and report["held"] == {}
    assert report["envelopes"] == total
    assert report["continue"]["ready"] is False  # a new key: certified from the next sequence
    assert (report["resumed_after"], report["taken"]) == (0, report["messages"])
    again = anjian("backup", "restore", new, "--from", f["backup"].nats.url, timeout=cli.left())
    assert (again["resumed_after"], again["taken"]) == (report["messages"], 0)  # goes on
    assert again["envelopes"] == total and again["quarantined"] == []
    assert digest(new, cli.left()) == before
    restored = {o: n for o, n in f["backup"].applied().items()}
    assert restored == held
    # the rebuilt log verifies with the root key alone, byte for byte the origins' own
    report = anjian("audit", "verify", new, "--root-key", root_pub, "--json", timeout=cli.left())
    assert report["ok"] and report["events_checked"] == total


def test_recovery_drill_a_county_that_lost_its_disk(fed, tmp_path):
    f = fed
    f.start("national", "city", "county")
    register_enterprises(f["county"], 200)
    wait_for(
        converged(f, "national", ["130102"]),
        90,
        "the national centre has the county's log",
        lambda: (f["national"].applied(), f["county"].applied()),
    )
    county = f["county"]
    county.kill()  # the disk is lost: no closing checkpoint, nothing kept
    old_key = load_key(county.directory / "node.key")
    lost = county.applied()["130102"]
    shutil.rmtree(county.directory)

    # a new disk, new keys: the city's NATS lets in only certified identities, so the city
    # certifies the new key and NATS identity from the next sequence (what it applied of the
    # county, in its `anjian status`) and revokes the lost key; its serving node has its
    # server authorise the new identity within a second or so, and refuse the old one
    fresh_node(county.directory, "130102", "county", "130102", f["city"].nats.url)
    root_pub = tmp_path / "root.pub"
    shutil.copy(f["city"].directory / "trust" / "root.pub", root_pub)
    assert f["city"].applied()["130102"] == lost
    city_key = load_key(f["city"].directory / "node.key")
    with closing_node(f["city"]) as city:
        at = city.log.tree()[0] + 1
        cert = certify(
            city_key,
            "130100",
            origin="130102",
            region="130102",
            tier="county",
            public=load_public(county.directory / "node.pub"),
            nats=read_nats_public(county.directory / "nats.pub"),
            from_seq=lost + 1,
            at_seq=at,
        )
        city.record_key_document(cert, user="admin")
        gone = revoke(
            city_key, "130100", origin="130102", key=old_key.key_id, last_seq=lost, at_seq=at + 1
        )
        city.record_key_document(gone, user="admin")
    wait_for(lambda: can_connect(f["city"], county), 30, "the city's NATS lets the new one in")

    # the history comes back from the city, verified, with the new certification: the node
    # may go on at once
    report = anjian(
        "recover", county.directory, "--from", f["city"].nats.url, "--root-key", root_pub
    )
    assert report["own_sequence"] == lost and report["quarantined"] == []
    assert report["continue"] == {
        "ready": True,
        "next_sequence": lost + 1,
        "key_id": load_key(county.directory / "node.key").key_id,
    }

    county.start()
    register_enterprises(county, 50, start=200)
    wait_for(
        lambda: f["national"].applied().get("130102") == lost + 50,
        90,
        "the national centre has the county's new events",
        lambda: (f["national"].applied(), county.applied()),
    )
    for tier in ("city", "national"):
        member = f[tier]
        assert member.quarantine() == []
        rows = member.query("SELECT seq FROM envelopes WHERE origin = '130102' ORDER BY seq")
        assert [r["seq"] for r in rows] == list(range(1, lost + 51))  # each exactly once
        assert member.envelopes("130102") == county.envelopes("130102")
