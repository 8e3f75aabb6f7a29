"""The same events from several origins, applied in any interleaving that keeps each origin's
own order (and in any batch sizes), give the same digest and the same statistics' cells."""

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import to_ms
from federation.envelope import parse
from node import config as config_mod
from node.projector import log_events
from node.replication.receipts import record_receipts
from node.service import Node
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import SITE_CODE, accident, credit_code, enterprise, inspection, js, site

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """Each county's log events: enterprises, accidents with supplements, a case, a site with
    alarms and summaries; and the city 130100's receipts of its two counties' reports."""
    tmp = tmp_path_factory.mktemp("streams")
    out = {}
    reports = []
    for n, region in enumerate(("130102", "130104", "130402")):
        node = Node(
            config_mod.load(make_node_dir(tmp / region, region=region), environ={}),
            clock=Clock(to_ms(NOW)),
        )
        node.execute(
            "enterprise.register",
            js(enterprise(credit_code=credit_code(n, region), division=region)),
            user="u",
        )
        a = node.execute("accident.report", js(accident(division=region, deaths=n)), user="u")["id"]
        node.execute(
            "accident.supplement", js({"deaths": n + 2, "expected_version": 1}), user="u", target=a
        )
        c = node.execute("case.open-inspection", js(inspection(division=region)), user="u")["id"]
        node.execute(
            "case.record-hazard",
            js({"hazard_class": "major", "description": "d"}),
            user="u",
            target=c,
        )
        code = f"{SITE_CODE}{n}"
        s = node.execute(
            "sensor.register-site", js(site(site_code=code, division=region)), user="u"
        )["id"]
        node.execute(
            "sensor.register-point",
            js({"point_code": "CO", "sensor_type": "co"}),
            user="u",
            target=s,
        )
        t0 = to_ms(NOW) - 20 * 60_000
        node.ingest(
            code,
            js(
                {
                    "readings": [
                        {"point": "CO", "t": t0 + i * 60_000, "value": 30 if i % 3 else 1}
                        for i in range(10)
                    ]
                }
            ),
            user="gw",
        )
        out[region] = log_events(node.log, 0, 10_000)
        if region.startswith("1301"):
            reports += [
                (e.aggregate, e.origin, e.seq, e.at)
                for e in map(parse, node.log.envelopes())
                if e.type == "accident.reported/1"
            ]
        node.close()
    city = Node(
        config_mod.load(make_node_dir(tmp / "130100", tier="city", region="130100"), environ={}),
        clock=Clock(to_ms(NOW) + 3 * 3_600_000),
    )
    assert record_receipts(city, reports) == 2
    out["130100"] = log_events(city.log, 0, 10_000)
    city.close()
    return out


def digest(ordered, batch):
    store = ProjectionStore(Path(":memory:"))
    events = [dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)]
    for i in range(0, len(events), batch):
        store.apply(events[i : i + batch])
    result = store.digest()
    for cells in ("accident_cells", "enforcement_cells"):  # not digested: compared here
        result[cells] = repr(sorted(tuple(r) for r in store.db.execute(f"SELECT * FROM {cells}")))
    store.close()
    return result


@pytest.fixture(scope="module")
def reference(streams):
    return digest([e for s in streams.values() for e in s], 10_000)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_interleaving_gives_the_same_digest(streams, reference, data):
    queues = {o: list(s) for o, s in streams.items()}
    merged = []
    while any(queues.values()):
        origin = data.draw(st.sampled_from(sorted(o for o, q in queues.items() if q)))
        merged.append(queues[origin].pop(0))
    batch = data.draw(st.integers(1, 50))
    assert digest(merged, batch) == reference


def test_the_fixture_exercises_every_projection(reference):
    empty = digest([], 1)
    tables = (
        "accident_cells",
        "accident_receipts",
        "accidents",
        "cases",
        "enforcement_cells",
        "enterprises",
        "excursions",
        "origins",
        "points",
        "sites",
        "summaries",
    )
    assert all(reference[t] != empty[t] for t in tables)
