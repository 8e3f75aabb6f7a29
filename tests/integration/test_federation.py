"""Federation over real nats-server processes and real `anjian serve` nodes (DESIGN.md §6):
outages, kills, injected messages, a revocation travelling down, and a four-tier view."""

from __future__ import annotations

import time

import pytest

from tests.integration.federation import Federation, converged, register_enterprises, wait_for

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
