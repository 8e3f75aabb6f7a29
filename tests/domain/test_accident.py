from datetime import datetime, timedelta

import pytest

from domain.accident import (
    Accident,
    CorrectAccident,
    ReportAccident,
    ReportNearMiss,
    SupplementAccident,
)
from domain.base import CHINA, DAY_MS, HOUR_MS, VoidCommand, to_ms
from domain.errors import Invalid, Refused
from tests.factories import NOW, accident, ctx, js, near_miss

OCCURRED = NOW - timedelta(hours=2)


def report(**over):
    return Accident.report(
        ReportAccident.model_validate_json(js(accident(OCCURRED, **over))), ctx()
    )


def supplement(agg, at, **fields):
    body = {"expected_version": agg.version, **fields}
    agg.supplement(SupplementAccident.model_validate_json(js(body)), ctx(now=at))


def correct(agg, at=NOW, **fields):
    body = {"expected_version": agg.version, **fields}
    agg.correct(CorrectAccident.model_validate_json(js(body)), ctx(now=at))


def test_a_report_derives_grade_deadlines_and_tiers():
    a = report(deaths=2, missing=1)
    v = a.view()
    assert (v["grade"], v["grade_label"], v["grade_criteria"]) == (
        "larger",
        "较大",
        ["deaths_and_missing"],
    )
    assert v["must_reach_tier"] == "province" and v["investigated_by_tier"] == "city"
    assert v["unit_report"] == {
        "deadline": "2026-11-29T15:00:00+08:00",
        "late": False,
        "minutes_late": 0,
    }
    assert v["history"][0]["actor"] == {"user": "zhang", "node": "130102"}
    assert [e.NAME for e in a.pending_events] == ["accident.reported/1"]


@pytest.mark.parametrize(
    ("delay", "late", "minutes"),
    [
        (timedelta(minutes=60), False, 0),
        (timedelta(minutes=60, milliseconds=1), True, 1),
        (timedelta(minutes=95), True, 35),
    ],
)
def test_the_one_hour_unit_deadline(delay, late, minutes):
    a = report(reported_at=(OCCURRED + delay).isoformat())
    assert a.view()["unit_report"]["late"] is late
    assert a.view()["unit_report"]["minutes_late"] == minutes


def test_a_supplement_that_raises_the_grade():
    a = report(deaths=2)
    assert a.grade.code == "general"
    supplement(a, NOW + timedelta(days=3), deaths=3, note="one injured worker died in hospital")
    assert a.grade.code == "larger" and a.version == 2 and a.supplements == 1
    supplement(a, NOW + timedelta(days=4), missing=7)
    assert a.grade.code == "major"
    assert a.pending_events[-1].payload() == {
        "changes": {"missing": 7},
        "grade": "major",
        "note": None,
    }


@pytest.mark.parametrize(
    ("industry", "days"),
    [("coal_mine", 30), ("construction", 30), ("road_traffic", 7), ("fire", 7)],
)
def test_casualty_supplements_at_the_window_boundary(industry, days):
    """自事故发生之日起N日内: the accident's day (China time) is not counted and the last day
    runs to 24:00. OCCURRED is 2026-11-29 14:00 +08:00, so 30 days end at 2026-12-30 24:00."""
    a = report(industry=industry)
    end = datetime(2026, 11, 29, tzinfo=CHINA) + timedelta(days=days + 1)
    supplement(a, end - timedelta(milliseconds=1), serious_injuries=1)  # last moment: inside
    with pytest.raises(Refused, match=f"within {days} days"):
        supplement(a, end, serious_injuries=2)
    assert a.facts["serious_injuries"] == 1 and a.version == 2
    with pytest.raises(Refused, match=f"within {days} days"):
        correct(a, end, deaths=1, reason="补录死亡人数")  # a correction cannot reopen the window
    assert a.version == 2


def test_the_window_counts_china_days_for_a_late_evening_accident():
    """23:30 on 1 March China time is 15:30 UTC: the window still starts from 1 March."""
    occurred = datetime(2026, 3, 1, 23, 30, tzinfo=CHINA)
    a = Accident.report(
        ReportAccident.model_validate_json(js(accident(occurred))),
        ctx(now=occurred + timedelta(hours=2)),
    )
    assert a.view()["supplement_window_until"] == "2026-04-01T00:00:00+08:00"  # 4-01 00:00 +08


def test_loss_and_narrative_can_be_supplemented_after_the_window():
    a = report()
    supplement(a, NOW + timedelta(days=90), direct_loss_yuan=12_000_000, summary="调查后的损失估计")
    assert a.grade.code == "larger"


def test_supplements_that_change_nothing_are_refused():
    a = report(deaths=1)
    with pytest.raises(Invalid, match="changes nothing"):
        supplement(a, NOW, deaths=1)
    with pytest.raises(Invalid, match="changes nothing"):
        supplement(a, NOW)


def test_near_miss_reports_need_a_criterion_and_have_no_casualties():
    ok = Accident.report_near_miss(ReportNearMiss.model_validate_json(js(near_miss())), ctx())
    assert ok.grade.code == "near_miss" and ok.view()["must_reach_tier"] == "province"
    for fields in ({"trapped": 2}, {"trapped": 0, "endangered": 9, "evacuated": 499}):
        with pytest.raises(Invalid, match="no 较大涉险 criterion"):
            Accident.report_near_miss(
                ReportNearMiss.model_validate_json(js(near_miss(**fields))), ctx()
            )
    for fields in (
        {"trapped": 0, "endangered": 10},
        {"trapped": 0, "evacuated": 500},
        {"trapped": 0, "facility_threat": True},
        {"trapped": 0, "other_circumstance": "x"},
    ):
        Accident.report_near_miss(
            ReportNearMiss.model_validate_json(js(near_miss(**fields))), ctx()
        )
    for field in ("deaths", "missing", "serious_injuries", "direct_loss_yuan"):
        with pytest.raises(Invalid) as e:
            supplement(ok, NOW, **{field: 1})
        assert e.value.errors[0].field == field
    supplement(ok, NOW, trapped=5)
    assert ok.grade.code == "near_miss"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("deaths", -1, "greater than or equal to 0"),
        ("direct_loss_yuan", 12.5, "valid integer"),
        ("direct_loss_yuan", "100", "valid integer"),
        ("deaths", True, "valid integer"),
        ("industry", "mining", "Input should be"),
        ("occurred_at", "2026-11-29T06:00:00", "timezone"),
        ("occurred_at", "0001-01-01T00:30:00+01:00", "1970-2099"),
        ("reported_at", "1900-01-01T00:00:00+08:00", "1970-2099"),
        ("occurred_at", "9999-12-31T23:00:00-05:00", "1970-2099"),
        ("division", "13010", "six digits"),
        ("enterprise_credit_code", "91350100M000100Y44", "check character"),
        ("summary", "", "at least 1 character"),
        ("grade", "general", "Extra inputs"),
    ],
)
def test_every_bad_field_is_named(field, value, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as e:
        ReportAccident.model_validate_json(js(accident(OCCURRED, **{field: value})))
    (err,) = e.value.errors()
    assert err["loc"] == (field,) and message in err["msg"]


def test_times_are_checked_against_the_clock_and_each_other():
    with pytest.raises(Invalid, match="in the future"):
        report(occurred_at=(NOW + timedelta(hours=1)).isoformat())
    with pytest.raises(Invalid, match="earlier than occurred_at"):
        report(reported_at=(OCCURRED - timedelta(minutes=1)).isoformat())


def test_an_accident_outside_the_node_area_is_refused():
    with pytest.raises(Invalid, match="outside this node's area"):
        report(division="130104")


def test_corrections_re_derive_the_grade_and_keep_the_reason():
    a = report(deaths=1)
    correct(a, NOW + timedelta(days=3), deaths=12, reason="录入错误: 12 人")
    assert a.grade.code == "major"
    assert a.pending_events[-1].payload()["reason"] == "录入错误: 12 人"
    correct(a, NOW + timedelta(days=60), direct_loss_yuan=2, place="二号井", reason="地点录错")
    with pytest.raises(Invalid, match="changes nothing"):
        correct(a, deaths=12, reason="again")
    with pytest.raises(ValueError, match="no field"):
        CorrectAccident.model_validate_json(js({"reason": "nothing", "expected_version": 1}))
    with pytest.raises(ValueError, match="expected_version"):
        CorrectAccident.model_validate_json(js({"reason": "no version", "deaths": 1}))


def test_a_corrected_occurrence_time_moves_the_deadlines():
    a = report()
    later = OCCURRED + timedelta(minutes=30)
    correct(a, occurred_at=later.isoformat(), reason="时间记错")
    assert a.facts["occurred_at"] == to_ms(later)
    assert a.view()["unit_report"]["deadline"] == "2026-11-29T15:30:00+08:00"


def test_a_voided_accident_refuses_everything():
    a = report()
    a.void(VoidCommand.model_validate_json(js({"reason": "重复录入"})), ctx())
    with pytest.raises(Refused, match="voided"):
        supplement(a, NOW, deaths=1)
    with pytest.raises(Refused, match="voided"):
        a.void(VoidCommand.model_validate_json(js({"reason": "again"})), ctx())
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="reason"):
        VoidCommand.model_validate_json(js({}))


def test_replay_gives_the_same_state():
    a = report(deaths=2)
    supplement(a, NOW + timedelta(days=1), deaths=4)
    events = a.collect_events()
    b = Accident.replay(events)
    assert b is not None and b.view() == a.view()
    assert events[1].recorded_at - events[0].recorded_at == DAY_MS
    assert HOUR_MS == 3_600_000


@pytest.mark.parametrize(
    ("region", "tier", "deaths", "reach", "expected"),
    [
        ("130102", "county", 0, ("city", "130100"), ["130100"]),
        ("130102", "county", 3, ("province", "130000"), ["130100", "130000"]),
        # 济源: no city above the county-level unit, the province receives the 一般 report
        ("419001", "county", 0, ("province", "410000"), ["410000"]),
        # 东莞: the city without counties receives the unit's report itself
        ("441900", "city", 0, ("city", "441900"), []),
        ("441900", "city", 3, ("province", "440000"), ["440000"]),
    ],
)
def test_the_tier_the_report_must_reach_follows_the_division_chain(
    region, tier, deaths, reach, expected
):
    a = Accident.report(
        ReportAccident.model_validate_json(js(accident(OCCURRED, deaths=deaths, division=region))),
        ctx(region=region, tier=tier),
    )
    v = a.view()
    assert (v["must_reach_tier"], v["must_reach_region"]) == reach
    assert v["receipts_expected_from"] == expected
    assert v["unit_report"]["deadline"] == "2026-11-29T15:00:00+08:00"  # the unit's hour unchanged
