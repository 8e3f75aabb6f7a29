"""迟报, 漏报, 谎报 and 瞒报 in the accident register, from real events of real nodes: a county
reports four accidents, its city, province and the national centre receive them at chosen
times (each tier's onward report due 2 hours after its own receipt, 493号令 Art. 11), bureaus
record findings, and a view holding all their logs (as the province or the national centre
does) counts each kind by region and month."""

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from domain.base import HOUR_MS, to_ms
from domain.errors import Refused
from federation.envelope import parse
from node import config as config_mod
from node.errors import NotFound
from node.projector import log_events
from node.replication.receipts import record_receipts
from node.service import Node
from projections.queries import Filters, run
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import NOW, accident, credit_code, js

T0 = to_ms(NOW)
MIN = 60_000
OCCURRED = NOW - timedelta(hours=2)  # 2026-11-29 14:00 China time


def node_at(tmp, tier, region, at):
    directory = make_node_dir(tmp / f"{tier}-{region}", tier=tier, region=region)
    return Node(config_mod.load(directory, environ={}), clock=Clock(at))


def finding(accident_id, finding, **over):
    return js({"accident_id": accident_id, "finding": finding, "basis": "经查证属实", **over})


def reports_of(node):
    return {
        e.aggregate: (e.aggregate, e.origin, e.seq, e.at)
        for e in map(parse, node.log.envelopes())
        if e.type == "accident.reported/1"
    }


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reporting")
    county = node_at(tmp, "county", "130102", T0)
    ids = {}
    for n, (name, over) in enumerate(
        (
            ("A", {"deaths": 1}),  # 一般: the city receives it on the last instant
            # 较大, the unit reported it 1 h 1 min after the accident (迟报 by the unit)
            ("B", {"deaths": 3, "reported_at": (OCCURRED + timedelta(minutes=61)).isoformat()}),
            ("C", {"deaths": 1}),  # 一般: the city receives it a minute late
            ("D", {"deaths": 3}),  # 较大: the province receives it a minute late
        )
    ):
        body = accident(OCCURRED, enterprise_credit_code=credit_code(n + 1), **over)
        ids[name] = county.execute("accident.report", js(body), user="clerk")["id"]
        county.clock.advance(MIN)
    reports = reports_of(county)
    at = {name: reports[i][3] for name, i in ids.items()}  # each report's signed time
    county.execute("accident.record-finding", finding(ids["C"], "concealed"), user="clerk")
    wrong = county.execute("accident.record-finding", finding(ids["A"], "omitted"), user="clerk")
    county.execute(
        "accident.void-finding", js({"reason": "认定有误"}), user="clerk", target=wrong["id"]
    )
    with pytest.raises(Refused, match="a tier above it"):  # no bureau finds against itself
        county.execute(
            "accident.record-finding",
            finding(ids["C"], "omitted", subject="bureau", bureau="130102"),
            user="clerk",
        )

    city = node_at(tmp, "city", "130100", at["B"] + 30 * MIN)
    assert record_receipts(city, [reports[ids["B"]], reports[ids["D"]]]) == 2
    city.clock.now_ms = at["A"] + 2 * HOUR_MS  # on the instant: on time
    record_receipts(city, [reports[ids["A"]]])
    city.clock.now_ms = at["C"] + 2 * HOUR_MS + MIN  # a minute late
    record_receipts(city, [reports[ids["C"]]])
    # the city found that the county concealed an accident: it records the accident and its
    # finding against the county's bureau (the city's own records)
    concealed = accident(OCCURRED, enterprise_credit_code=credit_code(9), deaths=2)
    ids["E"] = city.execute("accident.report", js(concealed), user="li")["id"]
    city.execute(
        "accident.record-finding",
        finding(ids["E"], "concealed", subject="bureau", bureau="130102"),
        user="li",
    )
    with pytest.raises(NotFound):  # a finding needs the accident in this node's log
        city.execute("accident.record-finding", finding(ids["A"], "omitted"), user="li")

    province = node_at(tmp, "province", "130000", at["B"] + 30 * MIN + 2 * HOUR_MS)
    record_receipts(province, [reports[ids["B"]]])  # 2 h after the city's receipt: on time
    province.clock.now_ms = at["B"] + 30 * MIN + 2 * HOUR_MS + MIN  # 2 h 1 min after: late
    record_receipts(province, [reports[ids["D"]]])
    national = node_at(tmp, "national", "000000", at["B"] + 10 * HOUR_MS)
    record_receipts(national, [reports[ids["B"]]])  # late, but a 较大 report stops at the province

    other = node_at(tmp, "county", "130104", T0)  # another county, in October
    october = NOW - timedelta(days=40)
    body = accident(october, division="130104", enterprise_credit_code=credit_code(1, "130104"))
    ids["F"] = other.execute("accident.report", js(body), user="wang")["id"]
    other.execute("accident.record-finding", finding(ids["F"], "falsified"), user="wang")

    events = {}
    for node in (county, city, province, national, other):
        node.project()
        events[node.config.node.origin] = log_events(node.log, 0, 1000)
    county_findings = county.query("accident-findings", Filters(as_of=T0))
    county.close()
    city.close()
    province.close()
    national.close()
    other.close()
    return {"events": events, "ids": ids, "at": at, "county_findings": county_findings}


@pytest.fixture(scope="module")
def view(logs):
    store = ProjectionStore(Path(":memory:"))
    ordered = [e for events in logs["events"].values() for e in events]
    store.apply([dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)])
    yield store
    store.close()


def q(store, name, **filters):
    return run(store.db, name, Filters(as_of=T0, **filters))


def test_each_tier_has_two_hours_from_its_own_receipt(logs, view):
    ids, at = logs["ids"], logs["at"]
    rows = {(r["accident_id"], r["tier"]): r for r in q(view, "accident-receipts")}
    a = rows[ids["A"], "city"]
    assert (a["due_from"], a["deadline"], a["received_at"], a["on_time"]) == (
        "130102",
        at["A"] + 2 * HOUR_MS,
        at["A"] + 2 * HOUR_MS,
        1,
    )
    c = rows[ids["C"], "city"]
    assert (c["on_time"], c["minutes_late"], c["required"]) == (0, 1, 1)
    b = rows[ids["B"], "province"]
    assert (b["due_from"], b["due_from_at"], b["on_time"]) == ("130100", at["B"] + 30 * MIN, 1)
    d = rows[ids["D"], "province"]
    assert (d["due_from"], d["deadline"], d["on_time"], d["minutes_late"], d["required"]) == (
        "130100",
        at["B"] + 30 * MIN + 2 * HOUR_MS,  # the city received B and D together
        0,
        1,
        1,
    )
    n = rows[ids["B"], "national"]
    assert (n["due_from"], n["on_time"], n["required"], n["must_reach_region"]) == (
        "130000",
        0,
        0,  # a 较大 report must reach the province only (Art. 10)
        "130000",
    )
    assert {(r["accident_id"], r["tier"]) for r in q(view, "accident-receipts", status="late")} == {
        (ids["C"], "city"),
        (ids["D"], "province"),
        (ids["B"], "national"),
    }


def test_statistics_count_each_kind_by_region_and_month(view):
    columns = ("accidents", "late_unit", "late_onward", "omitted", "falsified", "concealed")
    by_county = {
        (r["region"], r["month"], r["grade"]): tuple(r[c] for c in columns)
        for r in q(view, "accident-stats")
    }
    assert by_county == {
        # A, C and the city's E: C a minute late to the city, C concealed by the unit (found by
        # the county), E concealed by the county's bureau (found by the city); A's 漏报 voided
        ("130102", "2026-11", "general"): (3, 0, 1, 0, 0, 2),
        # B reported late by the unit (and late to the national centre, not required); D a
        # minute late to the province
        ("130102", "2026-11", "larger"): (2, 1, 1, 0, 0, 0),
        ("130104", "2026-10", "general"): (1, 0, 0, 0, 1, 0),
    }
    by_city = {
        (r["region"], r["month"]): tuple(r[c] for c in columns)
        for r in q(view, "accident-stats", level="city")
        if r["grade"] == "general"
    }
    assert by_city == {
        ("130100", "2026-11"): (3, 0, 1, 0, 0, 2),
        ("130100", "2026-10"): (1, 0, 0, 0, 1, 0),
    }


def test_findings_are_listed_with_their_bureau_and_basis(logs, view):
    ids = logs["ids"]
    rows = q(view, "accident-findings")
    assert sorted(
        (r["accident_id"], r["finding"], r["label"], r["subject"], r["bureau"], r["origin"])
        for r in rows
    ) == sorted(
        [
            (ids["C"], "concealed", "瞒报", "unit", None, "130102"),
            (ids["E"], "concealed", "瞒报", "bureau", "130102", "130100"),
            (ids["F"], "falsified", "谎报", "unit", None, "130104"),
        ]
    )
    assert all(r["basis"] == "经查证属实" for r in rows)
    assert [r["accident_id"] for r in q(view, "accident-findings", region="130104")] == [ids["F"]]
    assert [r["accident_id"] for r in q(view, "accident-findings", accident=ids["C"])] == [ids["C"]]
    assert len(q(view, "accident-findings", status="concealed")) == 2
    # the county's own view, after node.project(): its finding, not the voided one
    assert [(r["accident_id"], r["finding"]) for r in logs["county_findings"]] == [
        (ids["C"], "concealed")
    ]


def test_the_view_is_the_same_whatever_the_order_of_the_origins(logs, view):
    events = logs["events"]
    backwards = ProjectionStore(Path(":memory:"))
    ordered = [e for origin in reversed(list(events)) for e in events[origin]]
    backwards.apply([dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)])
    assert backwards.digest() == view.digest()
    backwards.close()
