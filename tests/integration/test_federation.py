"""Federation over real nats-server processes and real `anjian serve` nodes
(docs/architecture.md §6): outages, kills, injected messages, a revocation travelling down, and a
four-tier view."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from federation.keys import revoke
from federation.suite import load_key
from node import config as config_mod
from node.audit.verify import audit_node
from node.replication.importer import Importer
from node.replication.status import federation_view
from projections.queries import Filters
from tests.factories import accident, js
from tests.integration.federation import (
    Federation,
    bad_signature,
    can_connect,
    closing_node,
    connect_as,
    converged,
    forge,
    inject,
    register_enterprises,
    tamper,
    wait_for,
)
from tests.node.test_rules_across_records import application
from tests.servers import Deadline

# each test's own waits add up to at most ~430 s (the federation's start 120 s, its waits below,
# a stop 30 s, the kills at the end 5 s a process): the outage 367, the injections 430, the kills
# 417, the four tiers 375, the revocation 435. On a busy 2-core machine each takes 35-80 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

THREE = [
    ("national", "national", "000000", None),
    ("city", "city", "130100", "national"),
    ("county", "county", "130102", "city"),
]


@pytest.fixture
def three(tmp_path):
    f = Federation(tmp_path, THREE)
    yield f
    f.close()


def test_an_outage_of_the_parent_loses_nothing_and_doubles_nothing(three):
    f = three
    f.start()
    register_enterprises(f["county"], 20)
    wait_for(
        converged(f, "national", ["130102", "130100"]),
        60,
        "national has the county's first 20",
        lambda: (f["national"].applied(), f["county"].applied()),
    )
    f["city"].nats.stop()
    register_enterprises(f["county"], 5000, start=20)
    time.sleep(2)  # the county keeps trying meanwhile
    assert f["county"].applied()["130102"] == 5020  # recorded offline
    assert f["city"].applied()["130102"] < 5020
    f["city"].nats.start()
    wait_for(
        converged(f, "national", ["130102", "130100"]),
        120,
        "national converges",
        lambda: (f["national"].applied(), f["county"].applied()),
    )
    county = f["county"].envelopes("130102")
    assert f["national"].envelopes("130102") == county  # byte-identical, once each, in order
    assert f["city"].envelopes("130102") == county
    rows = f["national"].query(
        "SELECT COUNT(*) AS n FROM stored_events WHERE topic = 'enterprise.registered/1'"
    )
    assert rows[0]["n"] == 5020
    assert f["national"].quarantine() == []


TWO_COUNTIES = [
    ("national", "national", "000000", None),
    ("city", "city", "130100", "national"),
    ("a", "county", "130102", "city"),
    ("b", "county", "130104", "city"),
]


def test_injected_messages_are_quarantined_while_good_traffic_flows(tmp_path):
    f = Federation(tmp_path, TWO_COUNTIES)
    try:
        f.start()
        register_enterprises(f["a"], 30)
        register_enterprises(f["b"], 30)
        wait_for(converged(f, "national", ["130102", "130104"]), 60, "first events arrive")
        f["a"].stop()  # a's next events are recorded but not published yet
        register_enterprises(f["a"], 10, start=30)
        a_log = f["a"].envelopes("130102")
        assert len(a_log) == 40
        b_key = load_key(f["b"].directory / "node.key")
        subject = "anjian.up.130100.env.130102"  # as if the city relayed them
        injected = [
            (subject, tamper(a_log[30], name="篡改")),  # a:31, payload changed after signing
            (subject, bad_signature(a_log[31])),  # a:32 with a broken signature
            (subject, a_log[35]),  # a:36, genuine, far ahead: a gap
            (subject, forge(a_log[32], b_key)),  # a:33 signed with county b's key
            (subject, a_log[2]),  # a:3 replayed
            (subject, bad_signature(a_log[3])),  # a:4 again, forged, at an applied position
            (subject, b"\x93\x01\x02\x03"),  # not an envelope
            ("anjian.up.130100.zzz.130102", a_log[0]),  # not a known kind of message
        ]
        inject(f["city"], injected)
        inject(f["national"], injected)
        register_enterprises(f["b"], 50, start=30)  # good traffic keeps flowing
        wait_for(converged(f, "national", ["130104"]), 60, "b's new events arrive")
        expected = [
            ("130102", 4, "bad_signature"),
            ("130102", 31, "bad_signature"),
            ("130102", 33, "foreign_key"),
            ("?", 0, "malformed_envelope"),
            ("?", 0, "malformed_message"),
        ]
        quarantined = Deadline(45)  # both tiers had them at once
        for tier in ("city", "national"):
            wait_for(
                lambda t=tier: sorted(f[t].quarantine()) == sorted(expected),
                quarantined.left(),
                f"{tier} quarantines the forgeries",
                lambda t=tier: f[t].quarantine(),
            )
            assert f[tier].applied()["130102"] == 30  # a waits at the gap, nothing forged applied
        f["a"].start()  # the real a:31.. arrive: the gap is repaired
        wait_for(converged(f, "national", ["130102", "130104"]), 60, "a converges")
        for tier in ("city", "national"):
            assert f[tier].envelopes("130102") == a_log  # the genuine ones, once each
            reasons = sorted(q[2] for q in f[tier].quarantine())
            assert reasons.count("bad_signature") == 3  # a:32's forgery too, once its turn came
        status = f["national"].query("SELECT COUNT(*) AS n FROM import_pending")[0]["n"]
        assert status == 0
    finally:
        f.close()


def test_killing_publishers_and_receivers_mid_stream_converges_exactly_once(three):
    f = three
    register_enterprises(f["county"], 3000)  # a backlog before anything runs
    f.start()
    restarts = Deadline(120)  # six: a node serves in 2 s idle, 10 s on a busy machine
    for victim in ("county", "city", "county", "city", "national", "county"):
        time.sleep(0.4)
        f[victim].kill()  # SIGKILL mid-stream
        f[victim].start(restarts)
    register_enterprises(f["county"], 200, start=3000)
    wait_for(
        converged(f, "national", ["130102", "130100"]),
        120,
        "national converges after the kills",
        lambda: (f["national"].applied(), f["county"].applied()),
    )
    county = f["county"].envelopes("130102")
    assert len(county) == 3200
    for tier in ("city", "national"):
        assert f[tier].envelopes("130102") == county
        rows = f[tier].query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT originator_id) AS d FROM stored_events"
            " WHERE topic = 'enterprise.registered/1'"
        )
        assert (rows[0]["n"], rows[0]["d"]) == (3200, 3200)  # each applied exactly once
        assert f[tier].quarantine() == []


FOUR_TIERS = [
    ("national", "national", "000000", None),
    ("province", "province", "130000", "national"),
    ("city", "city", "130100", "province"),
    ("a", "county", "130102", "city"),
    ("b", "county", "130104", "city"),
]
ALL = ["000000", "130000", "130100", "130102", "130104"]


@pytest.fixture
def four(tmp_path):
    f = Federation(tmp_path, FOUR_TIERS)
    yield f
    f.close()


def test_four_tiers_relay_receipts_archive_and_a_consistent_national_view(four):
    f = four
    f.start()
    register_enterprises(f["a"], 40)
    register_enterprises(f["b"], 25)
    with closing_node(f["a"]) as a:
        accident_id = a.execute("accident.report", js(accident()), user="clerk")["id"]
    with closing_node(f["province"]) as province:  # a licence for an enterprise of county a
        lic = province.execute("licence.apply", application("130102"), user="li")["id"]
        province.execute("licence.accept", "{}", user="li", target=lic)
    wait_for(
        lambda: all(f[t].applied().get("130102") == 41 for t in ("city", "province", "national")),
        60,
        "the report reaches every tier",
    )
    # each tier above the county signed its receipt, and the receipts travel up too
    wait_for(
        converged(f, "national", ALL),
        60,
        "national holds every origin",
        lambda: (f["national"].applied(), {n: m.applied() for n, m in f.members.items()}),
    )
    for name in ("a", "city", "province", "national"):  # byte-identical at every tier
        assert f[name].envelopes("130102") == f["a"].envelopes("130102")
    # the licence came down to county a (its area) and not to county b
    wait_for(
        lambda: len(f["a"].query("SELECT * FROM downward WHERE type LIKE 'licence.%'")) == 2,
        60,
        "the licence reaches county a",
    )
    assert f["b"].query("SELECT * FROM downward WHERE type LIKE 'licence.%'") == []
    archive = archived(f["national"])
    held = f["national"].query("SELECT origin, seq, raw FROM envelopes")
    assert {(r["origin"], r["seq"]): bytes(r["raw"]) for r in held} == archive
    f.stop()

    with closing_node(f["national"]) as national:
        rows = national.query("accident-receipts", Filters(accident=accident_id, as_of=0))
        assert [r["tier"] for r in rows] == ["city", "province", "national"]
        assert all(r["on_time"] for r in rows)
        national.project()
        view = national._projector.store.digest("130100")["all"]
        status = federation_view(national, national.clock())
    assert status["origins"]["130102"]["applied"] == 41
    assert status["origins"]["130102"]["pending"] == 0
    assert status["children"]["130000"]["origins"] == ["130000", "130100", "130102", "130104"]
    with closing_node(f["a"]) as a:  # the county sees the province's licence of its area
        assert [r["id"] for r in a.query("licences", Filters(as_of=a.clock()))] == [lic]
        importer = Importer(a)
        report = audit_node(a.config, importer.trust())
        assert report["ok"], report["failures"]  # its log and what came down, all signed
        trust = importer.trust()
    db = sqlite3.connect(f["a"].directory / "events.db", isolation_level=None)
    rowid, state = db.execute(
        "SELECT rowid, state FROM stored_events WHERE topic LIKE 'licence.%' LIMIT 1"
    ).fetchone()
    altered = json.dumps({**json.loads(state), "holder": "someone else"}).encode()
    db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (altered, rowid))
    db.close()
    # a licence from above, changed in the store: named
    report = audit_node(config_mod.load(f["a"].directory, environ={}), trust)
    assert [x["reason"] for x in report["failures"]] == ["event_differs"]
    city_dir = f["city"].directory
    (city_dir / "projections.db").unlink(missing_ok=True)
    with closing_node(f["city"]) as city:  # rebuilt from the subtree's logs it holds
        city.project()
        assert city._projector.store.digest("130100")["all"] == view


def archived(member) -> dict[tuple[str, int], bytes]:
    """Every envelope on the national archive stream, by origin and sequence."""
    import asyncio

    async def run() -> dict[tuple[str, int], bytes]:
        nc = await connect_as(member)
        js_ = nc.jetstream()
        sub = await js_.pull_subscribe("anjian.archive.env.>", stream="ANJIAN_ARCHIVE")
        found: dict[tuple[str, int], bytes] = {}
        while True:
            try:
                msgs = await sub.fetch(500, timeout=1)
            except TimeoutError:
                break
            for m in msgs:
                _digest, origin, seq = m.headers["Nats-Msg-Id"].split(":")
                found[(origin, int(seq))] = m.data
                await m.ack()
        await nc.close()
        return found

    return asyncio.run(run())


def test_a_revocation_at_the_province_cuts_the_county_off_and_every_ancestor_refuses(four):
    f = four
    f.start()
    register_enterprises(f["a"], 10)
    wait_for(converged(f, "national", ["130102", "130100", "130000"]), 60, "first events")
    a_key = load_key(f["a"].directory / "node.key")
    with closing_node(f["province"]) as province:  # a's key: valid up to sequence 10 only
        next_seq = province.log.tree()[0] + 1
        doc = revoke(
            province.key,
            "130000",
            origin="130102",
            key=a_key.key_id,
            last_seq=10,
            at_seq=next_seq,
        )
        province.record_key_document(doc, user="admin")
    wait_for(lambda: _revoked_at(f["city"]), 60, "the revocation comes down to the city")
    wait_for(lambda: _revoked_at(f["b"]), 60, "and to county b, a's neighbour")
    wait_for(
        converged(f, "national", ["130000"]), 60, "the revocation goes up to the national centre"
    )
    # its only key revoked, county a's NATS identity is no longer let into the city's server;
    # the city closes a's connection as soon as it knows, so whether a itself took the
    # revocation from the city's downward stream first is a race (a's status names the refusal)
    wait_for(lambda: not can_connect(f["city"], f["a"]), 30, "the city's NATS refuses county a")
    register_enterprises(f["a"], 5, start=10)  # signed with the revoked key
    late = f["a"].envelopes("130102")[10:]
    # as one holding a's NATS key before the revocation, and a faulty relay, would pass them on
    inject(f["city"], [("anjian.up.130102.env.130102", raw) for raw in late])
    subject = "anjian.up.130100.env.130102"
    inject(f["province"], [(subject, raw) for raw in late])
    inject(f["national"], [(subject, raw) for raw in late])
    refused = Deadline(60)  # the three tiers had them at once
    for tier in ("city", "province", "national"):
        wait_for(
            lambda t=tier: (
                {(o, s, r) for o, s, r in f[t].quarantine()}
                >= {("130102", s, "revoked_key") for s in range(11, 16)}
            ),
            refused.left(),
            f"{tier} refuses a's envelopes after sequence 10",
            lambda t=tier: f[t].quarantine(),
        )
        assert f[tier].applied()["130102"] == 10


def _revoked_at(member) -> bool:
    """Whether the node's trust, as its importer builds it, ends a's key at sequence 10."""
    with closing_node(member) as node:
        trust = Importer(node).trust()
    return any(g.origin == "130102" and g.until_seq == 10 for g in trust.grants)
