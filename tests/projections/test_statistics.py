"""Statistics against hand-computed expectations, on a fixture of realistic events recorded
by three county nodes of two cities and imported nowhere: each county's projections, then
all three logs' events together (as a province sees them)."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from domain.base import CHINA, DAY_MS, to_ms
from node import config as config_mod
from node.projector import log_events
from node.service import Node
from projections.queries import Filters, run
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import INSPECTORS, accident, credit_code, enterprise, inspection, js

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)


# decided after notices of a 50,000 yuan fine and a warning
DECIDED = {
    "130102": [{"type": "fine", "amount_yuan": 12000}, {"type": "warning"}],
    "130104": [{"type": "fine", "amount_yuan": 30000}],
    "130402": [{"type": "fine", "amount_yuan": 45000}, {"type": "warning"}],
}


def county(tmp_path, region):
    d = make_node_dir(tmp_path / region, region=region)
    return Node(config_mod.load(d, environ={}), clock=Clock(to_ms(NOW)))


def day(n: int) -> str:
    return (NOW - timedelta(days=n)).isoformat()


@pytest.fixture(scope="module")
def province_view(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fixture")
    events = []
    for region, accidents, cases in (
        # 长安区 (city 130100): a 较大 (3 dead) in November, a 一般 with a late report in October
        (
            "130102",
            [dict(deaths=3, occurred=day(3)), dict(deaths=1, occurred=day(40), late=True)],
            [("general", True), ("major", False)],
        ),
        # 桥西区 (city 130100): a 重大 by loss (6000万) in November
        ("130104", [dict(direct_loss_yuan=60_000_000, occurred=day(5))], [("general", False)]),
        # 邯山区 (city 130400): a 一般 in November
        ("130402", [dict(serious_injuries=2, occurred=day(1))], [("major", True)]),
    ):
        node = county(tmp, region)
        node.execute(
            "enterprise.register",
            js(enterprise(credit_code=credit_code(1, region), division=region)),
            user="u",
        )
        for a in accidents:
            occurred = a.pop("occurred")
            late = a.pop("late", False)
            body = accident(
                datetime.fromisoformat(occurred),
                division=region,
                enterprise_credit_code=credit_code(1, region),
                **a,
            )
            if late:
                body["reported_at"] = (
                    datetime.fromisoformat(occurred) + timedelta(hours=3)
                ).isoformat()
            node.execute("accident.report", js(body), user="u")
        for n, (cls, rectified) in enumerate(cases):
            c = node.execute(
                "case.open-inspection",
                js(
                    inspection(
                        division=region,
                        enterprise_credit_code=credit_code(1, region),
                        started_at=day(2),
                    )
                ),
                user="u",
            )["id"]
            node.execute(
                "case.record-hazard",
                js({"hazard_class": cls, "description": "d", "rectified_on_site": rectified}),
                user="u",
                target=c,
            )
            if region == "130402":  # the county recommends; the province would decide
                node.execute(
                    "case.recommend-licence-action",
                    js(
                        {
                            "licence_number": "(冀)MK安许证字[2024]001",
                            "action": "suspend",
                            "reason": "重大隐患",
                        }
                    ),
                    user="u",
                    target=c,
                )
            if n == 0:
                node.execute("case.file", js({"violations": "违法"}), user="u", target=c)
                node.execute(
                    "case.record-evidence",
                    js({"evidence_type": "书证", "description": "d", "collected_by": INSPECTORS}),
                    user="u",
                    target=c,
                )
                node.execute(
                    "case.notify-penalty",
                    js(
                        {
                            "penalties": [
                                {"type": "fine", "amount_yuan": 50000},
                                {"type": "warning"},
                            ],
                            "facts": "f",
                        }
                    ),
                    user="u",
                    target=c,
                )
                node.clock.advance(10 * DAY_MS)  # the hearing window has passed
                node.execute(
                    "case.decide-penalty",
                    js({"penalties": DECIDED[region], "decision_no": f"{region}罚〔2026〕1号"}),
                    user="u",
                    target=c,
                )
        events += log_events(node.log, 0, 10_000)
        node.close()
    store = ProjectionStore(tmp / "province.db")
    ordered = sorted(events, key=lambda e: (e.origin, e.position))
    store.apply([dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)])  # one log
    return store


def q(store, name, **filters):
    return run(store.db, name, Filters(as_of=to_ms(NOW), **filters))


def test_accident_register_grades_and_late_reports(province_view):
    rows = q(province_view, "accidents")
    assert sorted((r["division"], r["grade"], r["late_report"]) for r in rows) == [
        ("130102", "general", 1),
        ("130102", "larger", 0),
        ("130104", "major", 0),
        ("130402", "general", 0),
    ]


def test_statistics_roll_up_county_city_province(province_view):
    by_city = q(province_view, "accident-stats", level="city")
    assert {
        (r["region"], r["month"], r["grade"]): (r["accidents"], r["deaths"], r["direct_loss_yuan"])
        for r in by_city
    } == {
        ("130100", "2026-11", "larger"): (1, 3, 0),
        ("130100", "2026-10", "general"): (1, 1, 0),
        ("130100", "2026-11", "major"): (1, 0, 60_000_000),
        ("130400", "2026-11", "general"): (1, 0, 0),
    }
    by_province = q(province_view, "accident-stats", level="province")
    assert sum(r["accidents"] for r in by_province) == 4 and {r["region"] for r in by_province} == {
        "130000"
    }
    only_130100 = q(province_view, "accident-stats", level="county", region="130100")
    assert {r["region"] for r in only_130100} == {"130102", "130104"}
    november = q(province_view, "accidents", since=to_ms(datetime(2026, 11, 1, tzinfo=CHINA)))
    assert len(november) == 3


def test_enforcement_indicators_and_rectification_rates(province_view):
    rows = {r["region"]: r for r in q(province_view, "enforcement-stats", level="city")}
    c = rows["130100"]  # 130102: general (rectified), major (open); 130104: general (open)
    assert (
        c["inspections"],
        c["general_hazards"],
        c["general_rectified"],
        c["general_rectification_rate"],
    ) == (3, 2, 1, 0.5)
    assert (c["major_hazards"], c["major_rectified"], c["major_rectification_rate"]) == (1, 0, 0.0)
    assert c["cases"] == 2 and rows["130400"]["major_rectification_rate"] == 1.0
    assert (c["fines_yuan"], c["warnings"], c["shutdowns_ordered"]) == (42000, 1, 0)
    assert (rows["130400"]["fines_yuan"], rows["130400"]["warnings"]) == (45000, 1)
    by_province = q(province_view, "enforcement-stats", level="province")
    assert [(r["region"], r["fines_yuan"], r["cases"]) for r in by_province] == [
        ("130000", 87000, 3)
    ]
    h = rows["130400"]
    assert (h["licence_suspensions_recommended"], h["licences_suspended"]) == (1, 0)
    assert c["licence_suspensions_recommended"] == 0
    open_cases = q(province_view, "open-cases", region="130102")
    assert len(open_cases) == 2 and all(not r["overdue"] for r in open_cases)


def test_unlicensed_coal_mines_and_origins(province_view):
    assert {r["division"] for r in q(province_view, "unlicensed")} == {"130102", "130104", "130402"}
    origins = {r["origin"]: r["events"] for r in q(province_view, "origins")}
    assert set(origins) == {"130102", "130104", "130402"} and all(n > 3 for n in origins.values())


def test_licence_expiry_windows_depend_on_as_of(tmp_path):
    d = make_node_dir(tmp_path / "province", tier="province", region="130000")
    node = Node(config_mod.load(d, environ={}), clock=Clock(to_ms(NOW)))
    lic = node.execute(
        "licence.apply",
        js(
            {
                "enterprise_credit_code": credit_code(1),
                "enterprise_name": "某煤矿",
                "industry": "coal_mine",
                "division": "130102",
                "scope": "煤炭开采",
            }
        ),
        user="u",
    )["id"]
    node.execute("licence.accept", "{}", user="u", target=lic)
    node.execute(
        "licence.issue",
        js({"number": "（冀）MK安许证字〔2024〕0012", "valid_from": "2024-01-10T00:00:00+08:00"}),
        user="u",
        target=lic,
    )
    node.project()

    def licence(as_of: datetime) -> dict:
        (row,) = node.query("licences", Filters(as_of=to_ms(as_of)))
        return row

    assert (
        licence(datetime(2026, 10, 1, tzinfo=CHINA))["expiring_within_90_days"] == 0
    )  # 101 days left
    assert licence(datetime(2026, 10, 13, tzinfo=CHINA))["expiring_within_90_days"] == 1  # 89 days
    expired = licence(datetime(2027, 1, 10, tzinfo=CHINA))
    assert (expired["expiring_within_90_days"], expired["past_validity"]) == (0, 1)
    digest = node._projector.store.digest()["all"]
    node.query("licences", Filters(as_of=to_ms(datetime(2030, 1, 1, tzinfo=UTC))))
    assert node._projector.store.digest()["all"] == digest  # as_of never enters the tables
    assert (
        to_ms(datetime(2027, 1, 10, tzinfo=CHINA)) - to_ms(datetime(2026, 10, 1, tzinfo=CHINA))
        > DAY_MS * 90
    )
    node.close()
