"""Federation over real nats-server processes and real `anjian serve` nodes (DESIGN.md §6):
outages, kills, injected messages, a revocation travelling down, and a four-tier view."""

from __future__ import annotations

import time

import pytest

from federation.suite import load_key
from tests.integration.federation import (
    Federation,
    bad_signature,
    converged,
    forge,
    inject,
    register_enterprises,
    tamper,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

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
        inject(f["city"].nats.url, injected)
        inject(f["national"].nats.url, injected)
        register_enterprises(f["b"], 50, start=30)  # good traffic keeps flowing
        wait_for(converged(f, "national", ["130104"]), 60, "b's new events arrive")
        expected = [
            ("130102", 4, "bad_signature"),
            ("130102", 31, "bad_signature"),
            ("130102", 33, "foreign_key"),
            ("?", 0, "malformed_envelope"),
            ("?", 0, "malformed_message"),
        ]
        for tier in ("city", "national"):
            wait_for(
                lambda t=tier: sorted(f[t].quarantine()) == sorted(expected),
                30,
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
    for victim in ("county", "city", "county", "city", "national", "county"):
        time.sleep(0.4)
        f[victim].kill()  # SIGKILL mid-stream
        f[victim].start()
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
