"""The statistics' cells (projections.cells) equal the statistics counted from the records,
whatever happened to the records (corrections into another month or county, regrades, voids,
late receipts, findings recorded and voided) and however the events came in batches."""

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import CHINA, HOUR_MS, to_ms
from domain.finding import FindingRecorded, FindingVoided
from domain.receipt import ReceiptRecorded
from federation.envelope import parse
from node import config as config_mod
from node.projector import log_events
from node.replication.receipts import record_receipts
from node.service import Node
from projections.base import LogEvent
from projections.queries import GRADES, Filters, run
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import accident, credit_code, enterprise, inspection, js

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)
STATISTICS = ("accident-stats", "enforcement-stats")
NOVEMBER = to_ms(datetime(2026, 11, 1, tzinfo=CHINA))
OCTOBER = to_ms(datetime(2026, 10, 1, tzinfo=CHINA))


T0 = to_ms(NOW)


def node_at(tmp, tier, region, at=T0):
    directory = make_node_dir(tmp / f"{tier}-{region}", tier=tier, region=region)
    return Node(config_mod.load(directory, environ={}), clock=Clock(at))


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Two counties' and their city's logs: accidents reported, supplemented into a higher
    grade, corrected into another month, county or industry, voided; late and timely receipts;
    findings recorded and voided; cases with hazards, penalties, a correction and a void."""
    tmp = tmp_path_factory.mktemp("cells")
    found = []
    reports = []
    for n, region in enumerate(("130102", "130104")):
        county = node_at(tmp, "county", region)
        code = credit_code(1, region)
        county.execute(
            "enterprise.register", js(enterprise(credit_code=code, division=region)), user="u"
        )
        ids = [
            county.execute(
                "accident.report",
                js(accident(ago(days), division=region, enterprise_credit_code=code, deaths=d)),
                user="u",
            )["id"]
            for days, d in ((1, 1), (3, 3), (35, 0), (40, 1), (2, 0))
        ]
        # 一般 → 较大 by a supplement; October → November and another industry by a correction
        county.execute(
            "accident.supplement", js({"deaths": 4, "expected_version": 1}), user="u", target=ids[0]
        )
        county.execute(
            "accident.correct",
            js(
                {
                    "occurred_at": ago(4).isoformat(),
                    "reported_at": (ago(4) + timedelta(minutes=30)).isoformat(),
                    "industry": "hazardous_chemicals",
                    "reason": "录入错误",
                    "expected_version": 1,
                }
            ),
            user="u",
            target=ids[2],
        )
        county.execute(
            "accident.void",
            js({"reason": "重复登记", "expected_version": 1}),
            user="u",
            target=ids[4],
        )
        county.execute(
            "accident.record-finding",
            js({"accident_id": ids[1], "finding": "concealed", "basis": "经查证属实"}),
            user="u",
        )
        wrong = county.execute(
            "accident.record-finding",
            js({"accident_id": ids[0], "finding": "omitted", "basis": "经查证属实"}),
            user="u",
        )
        county.execute(
            "accident.void-finding", js({"reason": "认定有误"}), user="u", target=wrong["id"]
        )
        for m, days in enumerate((2, 33, 33)):
            c = county.execute(
                "case.open-inspection",
                js(
                    inspection(
                        division=region,
                        enterprise_credit_code=code,
                        started_at=ago(days).isoformat(),
                    )
                ),
                user="u",
            )["id"]
            for cls in ("general", "major"):
                county.execute(
                    "case.record-hazard",
                    js({"hazard_class": cls, "description": "d", "rectified_on_site": m == 0}),
                    user="u",
                    target=c,
                )
            if m == 1:
                county.execute("case.file", js({"violations": "违法"}), user="u", target=c)
            if m == 2 and n == 0:
                county.execute("case.void", js({"reason": "重复"}), user="u", target=c)
        reports += [
            (e.aggregate, e.origin, e.seq, e.at)
            for e in map(parse, county.log.envelopes())
            if e.type == "accident.reported/1"
        ]
        found += log_events(county.log, 0, 10_000)
        county.close()
    city = node_at(tmp, "city", "130100", T0 + 3 * HOUR_MS)  # late for most
    assert record_receipts(city, reports[:6]) == 6
    city.clock.now_ms = reports[6][3] + HOUR_MS  # on time
    record_receipts(city, reports[6:])
    # the city's own record, corrected into the other county and a month before
    moved = city.execute(
        "accident.report",
        js(accident(ago(10), division="130102", enterprise_credit_code=credit_code(1), deaths=2)),
        user="u",
    )["id"]
    city.execute(
        "accident.correct",
        js(
            {
                "division": "130104",
                "occurred_at": ago(36).isoformat(),
                "reported_at": (ago(36) + timedelta(minutes=30)).isoformat(),
                "reason": "地点有误",
                "expected_version": 1,
            }
        ),
        user="u",
        target=moved,
    )
    found += log_events(city.log, 0, 10_000)
    city.close()
    # as the city's province takes them: the counties' logs, then the city's receipts
    ordered = sorted(found, key=lambda e: (e.origin == "130100", e.origin, e.position))
    return [dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)]


def build(events, batch=10_000):
    store = ProjectionStore(Path(":memory:"))
    for i in range(0, len(events), batch):
        store.apply(events[i : i + batch])
    return store


def cells(store):
    return {
        table: sorted(tuple(r.values()) for r in store.db.query(f"SELECT * FROM {table}"))
        for table in ("accident_cells", "enforcement_cells")
    }


FILTERS = [
    {},
    {"level": "city"},
    {"level": "province"},
    {"region": "130100", "level": "county"},
    {"region": "130104"},
    {"grade": "larger"},
    {"industry": "coal_mine", "level": "city"},
    {"since": NOVEMBER},
    {"until": NOVEMBER, "level": "city"},
    {"since": OCTOBER, "until": NOVEMBER, "region": "130102"},
]


def agree(store, **filters):
    """Each statistic with these filters, from the cells, checked against the records."""
    found = []
    for name in STATISTICS:
        if name == "enforcement-stats" and ("grade" in filters or "industry" in filters):
            continue  # not filters of it
        f = Filters(as_of=T0, **filters)
        by_cells = run(store.db, name, f)
        assert by_cells == run(store.db, name, f, from_rows=True), (name, filters)
        found.append(by_cells)
    return found


def test_the_cells_give_what_the_records_give(events):
    store = build(events)
    for filters in FILTERS:
        agree(store, **filters)
    assert all(agree(store))  # both have rows
    stats = run(store.db, "accident-stats", Filters(level="city"))
    # the fixture reaches what it means to: a finding, late onward reports, a voided accident
    assert sum(r["concealed"] for r in stats) == 2 and sum(r["omitted"] for r in stats) == 0
    assert sum(r["late_onward"] for r in stats) > 0
    assert sum(r["accidents"] for r in stats) == 9  # eleven reported, two voided
    cases = run(store.db, "enforcement-stats", Filters(level="province"))
    assert sum(r["inspections"] for r in cases) == 5  # six opened, one voided
    store.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 40))
def test_the_cells_are_the_same_in_any_batches(events, batch):
    whole = build(events)
    reference = cells(whole)
    assert reference["accident_cells"] and reference["enforcement_cells"]
    store = build(events, batch)
    assert cells(store) == reference
    for filters in FILTERS[:4]:
        assert agree(store, **filters) == agree(whole, **filters)
    store.close()
    whole.close()


def test_a_period_of_whole_months_is_summed_from_the_cells_and_another_from_records(events):
    from projections.queries import statement

    whole_months = Filters(since=OCTOBER, until=NOVEMBER)
    assert "accident_cells" in statement("accident-stats", whole_months)[0]
    for other in (OCTOBER + 1, NOVEMBER - HOUR_MS):  # not midnight on the 1st in China
        sql, _ = statement("accident-stats", Filters(since=other))
        assert "accident_cells" not in sql and "FROM accidents a" in sql
    store = build(events)
    for since in (OCTOBER + HOUR_MS, NOVEMBER - 5 * HOUR_MS):
        f = Filters(since=since, until=NOVEMBER + 20 * 86_400_000)
        assert run(store.db, "accident-stats", f) == run(store.db, "accident-stats", f, True)
    store.close()


# -- hand-made events: every order of reports, corrections, voids, receipts and findings ------

ACCIDENTS = ["a0000000-0000-4000-8000-00000000000" + str(n) for n in range(3)]
DIVISIONS = ("130102", "130104", "130402")
TIMES = (
    to_ms(datetime(2026, 9, 30, 23, 30, tzinfo=CHINA)),
    to_ms(datetime(2026, 10, 1, 0, 0, tzinfo=CHINA)),  # October in China, September in UTC
    to_ms(datetime(2026, 11, 15, 12, tzinfo=CHINA)),
)
INDUSTRIES = ("coal_mine", "road_traffic")


def report(n, division, at, grade, industry, deaths):
    return (
        ACCIDENTS[n],
        "accident.reported/1",
        {
            "enterprise_id": "e1",
            "enterprise_name": "某矿",
            "enterprise_credit_code": credit_code(1),
            "industry": industry,
            "place": "p",
            "occurred_at": at,
            "reported_at": at + (2 * HOUR_MS if deaths % 2 else 60_000),
            "grade": grade,
            "division": division,
            "deaths": deaths,
            "missing": 0,
            "serious_injuries": 1,
            "direct_loss_yuan": 1000,
        },
    )


def correct(n, changes, grade):
    return ACCIDENTS[n], "accident.corrected/1", {"changes": changes, "grade": grade}


def receipt(n, late, region):
    report_at = TIMES[0]
    return (
        f"r{n}{region}{late}",
        ReceiptRecorded.NAME,
        {
            "accident_id": ACCIDENTS[n],
            "reporting_origin": "130102",
            "reporting_seq": 1,
            "report_recorded_at": report_at,
            "tier": "city" if region.endswith("00") and not region.endswith("0000") else "province",
            "region": region,
        },
        report_at + (5 if late else 1) * HOUR_MS,
    )


def finding(n, kind, k):
    payload = {
        "accident_id": ACCIDENTS[n],
        "finding": kind,
        "subject": "unit",
        "bureau": None,
        "basis": "b",
        "division": "130102",
        "occurred_at": TIMES[0],
        "tier": "county",
        "region": "130102",
    }
    return f"f{k}", FindingRecorded.NAME, payload


n_ = st.integers(0, len(ACCIDENTS) - 1)
operation = st.one_of(
    st.builds(
        report,
        n_,
        st.sampled_from(DIVISIONS),
        st.sampled_from(TIMES),
        st.sampled_from(GRADES),
        st.sampled_from(INDUSTRIES),
        st.integers(0, 4),
    ),
    st.builds(
        correct,
        n_,
        st.fixed_dictionaries(
            {},
            optional={
                "division": st.sampled_from(DIVISIONS),
                "occurred_at": st.sampled_from(TIMES),
                "industry": st.sampled_from(INDUSTRIES),
                "deaths": st.integers(0, 12),
                "missing": st.integers(0, 2),
            },
        ),
        st.sampled_from(GRADES),
    ),
    st.builds(lambda n: (ACCIDENTS[n], "accident.voided/1", {"reason": "r"}), n_),
    st.builds(receipt, n_, st.booleans(), st.sampled_from(("130100", "130000"))),
    st.builds(
        finding, n_, st.sampled_from(("omitted", "falsified", "concealed")), st.integers(0, 3)
    ),
    st.builds(lambda k: (f"f{k}", FindingVoided.NAME, {"reason": "r"}), st.integers(0, 3)),
)


def as_events(operations):
    versions: dict[str, int] = {}
    out = []
    for i, (aggregate, type_, payload, *at) in enumerate(operations):
        if type_ == FindingRecorded.NAME and aggregate in versions:
            continue  # a finding is recorded once
        versions[aggregate] = versions.get(aggregate, 0) + 1
        origin = payload.get("region", "130102") if type_ == ReceiptRecorded.NAME else "130102"
        out.append(
            LogEvent(i + 1, origin, aggregate, versions[aggregate], type_, *at or [i], payload)
        )
    return out


@settings(max_examples=100, deadline=None)
@given(st.lists(operation, max_size=30), st.integers(1, 8))
def test_the_cells_equal_the_records_after_any_history(operations, batch):
    events = as_events(operations)
    store = build(events, batch)
    for level in ("county", "city", "province"):
        f = Filters(level=level)
        assert run(store.db, "accident-stats", f) == run(store.db, "accident-stats", f, True)
    assert cells(store) == cells(build(events))  # in batches or at once
    store.close()


def test_a_correction_into_another_cell_leaves_both_right():
    events = as_events(
        [
            report(0, "130102", TIMES[0], "general", "coal_mine", 1),
            report(1, "130102", TIMES[0], "general", "coal_mine", 2),
            correct(0, {"division": "130402", "occurred_at": TIMES[2], "deaths": 3}, "larger"),
        ]
    )
    store = build(events[:2])
    assert [
        (r["division"], r["month"], r["accidents"]) for r in store.db["accident_cells"].rows
    ] == [("130102", "2026-09", 2)]
    store.apply(events[2:])
    rows = {
        (r["division"], r["month"], r["grade"]): (r["accidents"], r["deaths"])
        for r in store.db["accident_cells"].rows
    }
    assert rows == {
        ("130102", "2026-09", "general"): (1, 2),
        ("130402", "2026-11", "larger"): (1, 3),
    }
    for level in ("county", "city", "province"):
        f = Filters(level=level)
        assert run(store.db, "accident-stats", f) == run(store.db, "accident-stats", f, True)
    store.close()
