"""A record as a person reads it: China time, the days the law counts as dates, every code with
its label and every division with its name; no epoch number anywhere."""

from datetime import datetime, timedelta

from domain.base import CHINA, last_day
from tests.factories import INSPECTORS, NOW, accident, enterprise, inspection, js


def _numbers(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**11:
        yield path, value


def test_last_day_of_a_period_that_ends_at_midnight():
    end = int(datetime(2026, 12, 29, tzinfo=CHINA).timestamp() * 1000)
    assert last_day(end) == "2026-12-28"
    assert last_day(end + 1) == "2026-12-29" and last_day(None) is None


def test_an_accident_and_a_case_read_as_a_clerk_reads_them(node):
    node.execute("enterprise.register", js(enterprise()), user="u")
    occurred = NOW - timedelta(hours=2)
    a = node.execute("accident.report", js(accident(occurred, deaths=3)), user="u")["record"]
    assert a["occurred_at"].endswith("+08:00") and a["division_name"] == "长安区"
    assert a["industry_label"] == "煤矿" and a["grade_label"] == "较大"
    assert a["must_reach_tier_label"] == "省级" and a["investigated_by_tier_label"] == "市级"
    day = occurred.astimezone(CHINA).date() + timedelta(days=30)
    assert a["supplement_window_last_day"] == day.isoformat()  # 30 days, as the law counts
    case = node.execute("case.open-inspection", js(inspection()), user="u")["id"]
    hazard = js({"hazard_class": "major", "description": "d"})
    node.execute("case.record-hazard", hazard, user="u", target=case)
    node.execute("case.file", js({"violations": "违法"}), user="u", target=case)
    evidence = {"evidence_type": "书证", "description": "d", "collected_by": INSPECTORS}
    node.execute("case.record-evidence", js(evidence), user="u", target=case)
    notice = {"penalties": [{"type": "fine", "amount_yuan": 50000}], "facts": "f"}
    node.execute("case.notify-penalty", js(notice), user="u", target=case)
    shown = node.show(case)
    assert shown["hazards"][0]["class_label"] == "重大事故隐患"
    assert shown["notice"]["penalties"][0]["type_label"] == "罚款"
    assert "subject_label" not in shown  # an inspection's subject is its own words
    assert shown["division_name"] == "长安区"
    for record in (a, shown, node.show(a["id"]), node.status()):
        assert list(_numbers(record)) == []
