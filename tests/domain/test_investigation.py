import uuid
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.base import CHINA, VoidCommand, iso, period_end, to_ms
from domain.errors import Invalid, Refused
from domain.investigation import (
    INVESTIGATION_NAMESPACE,
    CloseInvestigation,
    CorrectInvestigation,
    ExtendReply,
    ExtendReport,
    Investigation,
    OpenInvestigation,
    RecordReply,
    SubmitReport,
)
from tests.factories import NOW, ctx, js

ACCIDENT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
MS = timedelta(milliseconds=1)
# 自事故发生之日起N日内 (493号令 Arts. 29, 32): the accident's day (China time) is not counted and
# the last day runs to 24:00. OCCURRED is 2026-01-10 14:00 +08:00, so 60 days end at 2026-03-11
# 24:00 (= 03-12 00:00) and 120 days at 2026-05-10 24:00.
OCCURRED = datetime(2026, 1, 10, 14, 0, tzinfo=CHINA)
REPORT_END = datetime(2026, 3, 12, tzinfo=CHINA)
REPORT_EXTENDED = datetime(2026, 4, 10, tzinfo=CHINA)
REPORT_LIMIT = datetime(2026, 5, 11, tzinfo=CHINA)
# The report reaches the government 2026-03-01 14:00 +08:00: the reply is due within 15 days
# (to 03-16 24:00), 30 for 特别重大 (to 03-31 24:00), extendable to at most 60 (to 04-30 24:00).
SUBMITTED = datetime(2026, 3, 1, 14, 0, tzinfo=CHINA)
REPLY_END = {15: datetime(2026, 3, 17, tzinfo=CHINA), 30: datetime(2026, 4, 1, tzinfo=CHINA)}
REPLY_LIMIT = datetime(2026, 5, 1, tzinfo=CHINA)
# The node of the tier each grade assigns (493号令 Art. 19), over the accident's place 130102.
NODES = {
    "general": {"tier": "county", "region": "130102"},
    "larger": {"tier": "city", "region": "130100"},
    "major": {"tier": "province", "region": "130000"},
    "especially_major": {"tier": "national", "region": "000000"},
}


def accident(grade="general", occurred=OCCURRED, **over):
    body = {
        "id": ACCIDENT_ID,
        "grade": grade,
        "occurred_at": to_ms(occurred),
        "division": "130102",
        "voided": False,
    }
    body.update(over)
    return body


def cmd(model, **fields):
    return model.model_validate_json(js(fields))


def node(grade="general", now=NOW):
    return ctx(now=now, **NODES[grade])


def opened(grade="general", **over):
    body = {"accident_id": ACCIDENT_ID, "leader": "赵建华", "members": ["钱伟", "孙丽"]}
    return Investigation.open(cmd(OpenInvestigation, **body), node(grade), accident(grade, **over))


def submit(inv, when, grade="general"):
    inv.submit_report(
        cmd(SubmitReport, submitted_at=when.isoformat(), summary="顶板管理不到位"), node(grade)
    )


def reply(inv, when, grade="general"):
    inv.record_reply(cmd(RecordReply, replied_at=when.isoformat(), summary="同意"), node(grade))


def correct(inv, grade="general", **fields):
    body = cmd(CorrectInvestigation, expected_version=inv.version, **fields)
    inv.correct(body, node(grade))


# -- opening ------------------------------------------------------------------------------------


def test_opening_gives_the_deadlines():
    inv = opened()
    v = inv.view()
    assert v["status"] == "investigating" and v["tier"] == "county"
    assert v["leader"] == "赵建华" and v["members"] == ["钱伟", "孙丽"]
    assert v["report"]["due"] == iso(to_ms(REPORT_END)) == "2026-03-12T00:00:00+08:00"
    assert inv.report_due() == period_end(to_ms(OCCURRED), 60)
    assert v["report"]["extendable_to"] == iso(to_ms(REPORT_LIMIT)) == "2026-05-11T00:00:00+08:00"
    assert v["report"]["late"] is None and v["reply"]["due"] is None
    assert [e.NAME for e in inv.pending_events] == ["investigation.opened/1"]


@pytest.mark.parametrize(
    ("occurred", "end"),
    [
        (datetime(2026, 1, 10, 0, 0, tzinfo=CHINA), REPORT_END),
        (datetime(2026, 1, 10, 23, 30, tzinfo=CHINA), REPORT_END),  # 15:30 UTC, still 01-10
        (datetime(2026, 1, 11, 0, 30, tzinfo=CHINA), datetime(2026, 3, 13, tzinfo=CHINA)),
    ],
    ids=str,
)
def test_the_report_period_counts_china_days(occurred, end):
    inv = opened(occurred=occurred)
    assert inv.view()["report"]["due"] == iso(to_ms(end))
    submit(inv, end - MS)
    assert inv.view()["report"]["late"] is False


def test_one_investigation_per_accident_and_region():
    assert opened().id == opened().id == Investigation.id_for(ACCIDENT_ID, "130102")
    assert opened().id == uuid.uuid5(INVESTIGATION_NAMESPACE, f"{ACCIDENT_ID}:130102")
    assert Investigation.id_for(uuid.UUID(ACCIDENT_ID), "130102") == opened().id
    assert Investigation.id_for(uuid.uuid4(), "130102") != opened().id
    assert opened().id.version == 5


def test_a_regraded_accident_investigated_at_another_tier_gets_another_id():
    county = opened("general")
    city = opened("larger")  # the same accident, regraded 较大: the city node opens its own
    assert county.id != city.id
    assert city.id == Investigation.id_for(ACCIDENT_ID, "130100")


@pytest.mark.parametrize("grade", list(NODES))
def test_each_grade_is_investigated_by_its_tier(grade):
    assert opened(grade).view()["tier"] == NODES[grade]["tier"]


@pytest.mark.parametrize(
    ("grade", "label", "tier", "here"),
    [
        ("major", "重大", "province", "county"),
        ("larger", "较大", "city", "county"),
        ("major", "重大", "province", "city"),
        ("especially_major", "特别重大", "national", "province"),
    ],
)
def test_a_tier_below_the_assigned_one_is_refused_with_the_reason(grade, label, tier, here):
    wrong = next(n for n in NODES.values() if n["tier"] == here)
    body = cmd(OpenInvestigation, accident_id=ACCIDENT_ID, leader="赵建华", reason="认为必要")
    with pytest.raises(Refused, match=rf"{label}.*the {tier} government.*Art. 19.*a {here} node"):
        Investigation.open(body, ctx(**wrong), accident(grade))


# -- a superior government (Art. 20 para 1) and divisions without a middle tier -----------------

WHY = "社会影响较大, 市政府决定提级调查"


def open_at(region, tier, grade="general", reason=None, division="130102"):
    body = {"accident_id": ACCIDENT_ID, "leader": "赵建华"}
    if reason is not None:
        body["reason"] = reason
    where = ctx(region=region, tier=tier)
    return Investigation.open(
        cmd(OpenInvestigation, **body), where, accident(grade, division=division)
    )


def test_a_city_may_investigate_a_general_accident_with_its_reason():
    inv = open_at("130100", "city", "general", WHY)
    v = inv.view()
    assert (v["tier"], v["assigned_tier"], v["reason"]) == ("city", "county", WHY)
    assert inv.id == Investigation.id_for(ACCIDENT_ID, "130100")
    (event,) = inv.pending_events
    assert event.payload()["reason"] == WHY and event.payload()["tier"] == "city"
    assert event.payload()["assigned_tier"] == "county"


def test_a_tier_above_the_assigned_one_must_say_why():
    with pytest.raises(Invalid, match=r"county government \(130102\).*Art. 20.*say why") as e:
        open_at("130100", "city", "general")
    assert e.value.errors[0].field == "reason"
    with pytest.raises(ValidationError, match="reason"):
        open_at("130100", "city", "general", "x")  # two characters at least, as every reason


@pytest.mark.parametrize(
    ("region", "tier", "grade"),
    [
        ("130000", "province", "larger"),
        ("130000", "province", "general"),
        ("000000", "national", "larger"),
        ("000000", "national", "major"),
    ],
)
def test_any_tier_above_over_the_place_may_investigate(region, tier, grade):
    with pytest.raises(Invalid, match="say why"):
        open_at(region, tier, grade)
    v = open_at(region, tier, grade, WHY).view()
    assert (v["tier"], v["reason"]) == (tier, WHY)


def test_the_assigned_tier_needs_no_reason_and_keeps_one_given():
    assert open_at("130100", "city", "larger").view()["reason"] is None
    assert open_at("130100", "city", "larger", WHY).view()["reason"] == WHY


def test_a_county_cannot_open_a_larger_investigation():
    with pytest.raises(Refused, match=r"较大.*the city government \(130100; 493号令 Art. 19\)"):
        open_at("130102", "county", "larger", WHY)


def test_a_tier_above_outside_the_place_is_refused():
    with pytest.raises(Refused, match="outside this node's area"):
        open_at("130200", "city", "general", WHY)  # 唐山, not 石家庄
    with pytest.raises(Refused, match="outside this node's area"):
        open_at("140000", "province", "larger", WHY)
    with pytest.raises(Refused, match="a backup node"):
        open_at("000000", "backup", "especially_major", WHY)


def test_a_city_without_counties_investigates_its_own_general_accidents():
    """东莞 441900 has no county below it: the city does the county's part (Art. 19)."""
    v = open_at("441900", "city", "general", division="441900").view()
    assert (v["tier"], v["assigned_tier"], v["reason"]) == ("city", "city", None)
    assert open_at("441900", "city", "larger", division="441900").view()["assigned_tier"] == "city"
    with pytest.raises(Invalid, match=r"city government \(441900\)"):
        open_at("440000", "province", "general", division="441900")
    assert open_at("440000", "province", "general", WHY, "441900").view()["tier"] == "province"


def test_with_no_city_above_the_province_investigates_larger_accidents():
    """济源 419001 is directly under 河南: no city government stands between them."""
    assert open_at("419001", "county", "general", division="419001").view()["tier"] == "county"
    with pytest.raises(Refused, match=r"the province government \(410000; 493号令 Art. 19\)"):
        open_at("419001", "county", "larger", WHY, division="419001")
    v = open_at("410000", "province", "larger", division="419001").view()
    assert (v["tier"], v["assigned_tier"], v["reason"]) == ("province", "province", None)


def test_an_investigation_recorded_before_art_20_was_modelled_replays():
    """Events of the first shape have no assigned_tier nor reason: the tier was the one assigned."""
    event = opened().collect_events()[0]
    old = {k: v for k, v in vars(event).items() if k not in ("assigned_tier", "reason")}
    legacy = object.__new__(type(event))
    legacy.__dict__.update(old)  # as the event store rebuilds an event from its stored state
    replayed = Investigation.replay([legacy])
    assert isinstance(replayed, Investigation)
    assert (replayed.tier, replayed.assigned_tier, replayed.reason) == ("county", "county", None)


def test_refusals_at_opening():
    body = cmd(OpenInvestigation, accident_id=ACCIDENT_ID, leader="赵建华")
    for tier, region in (("county", "130102"), ("province", "130000")):
        with pytest.raises(Refused, match="较大涉险 near miss"):
            Investigation.open(body, ctx(tier=tier, region=region), accident("near_miss"))
    with pytest.raises(Refused, match="voided"):
        opened(voided=True)
    with pytest.raises(Refused, match="outside this node's area"):
        opened(division="130104")
    with pytest.raises(Invalid, match="not the accident given"):
        opened(id=str(uuid.uuid4()))
    with pytest.raises(ValidationError, match="accident_id"):
        cmd(OpenInvestigation, accident_id="accident-1", leader="赵建华")


# -- the report (Art. 29) -----------------------------------------------------------------------


@pytest.mark.parametrize(("when", "late"), [(REPORT_END - MS, False), (REPORT_END, True)])
def test_the_60_day_report_deadline(when, late):
    inv = opened()
    submit(inv, when)
    v = inv.view()
    assert v["report"]["late"] is late and v["status"] == "reported"
    assert v["report"]["submitted_at"] == iso(to_ms(when))


def extend_report(inv, until, grade="general"):
    inv.extend_report(cmd(ExtendReport, until=until.isoformat(), reason="技术鉴定"), node(grade))


def test_the_report_deadline_extends_to_at_most_120_days():
    inv = opened()
    extend_report(inv, REPORT_EXTENDED)
    extend_report(inv, REPORT_LIMIT)  # a second extension, up to the limit
    assert inv.view()["report"]["due"] == iso(to_ms(REPORT_LIMIT))
    assert inv.report_limit() == period_end(to_ms(OCCURRED), 120)
    assert len(inv.view()["report"]["extensions"]) == 2
    with pytest.raises(Refused, match=r"at most 120 days .* 2026-05-11T00:00:00\+08:00"):
        extend_report(inv, REPORT_LIMIT + MS)


@pytest.mark.parametrize(("when", "late"), [(REPORT_LIMIT - MS, False), (REPORT_LIMIT, True)])
def test_the_fully_extended_report_is_in_time_until_the_120th_day_ends(when, late):
    inv = opened()
    extend_report(inv, REPORT_LIMIT)
    submit(inv, when)
    assert inv.view()["report"]["late"] is late


def test_an_extension_beyond_the_limit_is_refused_at_once():
    inv = opened()
    with pytest.raises(Refused, match=r"2026-05-11T00:00:00\+08:00"):
        extend_report(inv, REPORT_LIMIT + MS)
    with pytest.raises(Invalid, match="not later than the current deadline"):
        extend_report(inv, REPORT_END)
    with pytest.raises(ValidationError, match="until"):
        extend_report(inv, datetime(2100, 6, 1, tzinfo=CHINA))  # outside the plausible years


@pytest.mark.parametrize(("when", "late"), [(REPORT_EXTENDED - MS, False), (REPORT_EXTENDED, True)])
def test_lateness_counts_against_the_extended_deadline(when, late):
    inv = opened()
    extend_report(inv, REPORT_EXTENDED)
    submit(inv, when)
    assert inv.view()["report"]["late"] is late


def test_the_report_is_submitted_once_and_not_extended_after():
    inv = opened()
    with pytest.raises(Invalid, match="earlier than the accident"):
        submit(inv, OCCURRED - MS)
    with pytest.raises(Invalid, match="in the future"):
        submit(inv, NOW + timedelta(hours=1))
    with pytest.raises(ValidationError, match="submitted_at"):
        submit(inv, datetime(1969, 12, 31, tzinfo=CHINA))
    submit(inv, SUBMITTED)
    with pytest.raises(Refused, match="already submitted"):
        submit(inv, SUBMITTED + timedelta(days=1))
    with pytest.raises(Refused, match="can no longer be extended"):
        extend_report(inv, REPORT_EXTENDED)


# -- the reply (Art. 32) and closing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "days"), [("general", 15), ("larger", 15), ("major", 15), ("especially_major", 30)]
)
@pytest.mark.parametrize(("offset", "late"), [(-MS, False), (timedelta(0), True)])
def test_the_reply_deadline(grade, days, offset, late):
    inv = opened(grade)
    submit(inv, SUBMITTED, grade)
    end = REPLY_END[days]
    assert inv.view()["reply"]["due"] == iso(to_ms(end))
    assert inv.reply_due() == period_end(to_ms(SUBMITTED), days)
    reply(inv, end + offset, grade)
    assert inv.view()["reply"]["late"] is late
    assert inv.view()["status"] == "replied"


def extend_reply(inv, until, grade="especially_major"):
    inv.extend_reply(cmd(ExtendReply, until=until.isoformat(), reason="涉及面广"), node(grade))


@pytest.mark.parametrize("grade", ["general", "larger", "major"])
def test_only_an_especially_major_reply_is_extended(grade):
    inv = opened(grade)
    submit(inv, SUBMITTED, grade)
    with pytest.raises(Refused, match="only 特别重大 accidents allow an extension"):
        extend_reply(inv, REPLY_END[30], grade)


def test_an_especially_major_reply_extends_by_at_most_30_days():
    inv = opened("especially_major")
    with pytest.raises(Refused, match="the report is not submitted yet"):
        extend_reply(inv, REPLY_LIMIT)
    submit(inv, SUBMITTED, "especially_major")
    assert inv.view()["reply"]["extendable_to"] == iso(to_ms(REPLY_LIMIT))
    assert iso(period_end(to_ms(SUBMITTED), 60)) == iso(to_ms(REPLY_LIMIT))
    with pytest.raises(Refused, match=r"at most 30 days, to 2026-05-01T00:00:00\+08:00"):
        extend_reply(inv, REPLY_LIMIT + MS)
    with pytest.raises(Invalid, match="not later than the current deadline"):
        extend_reply(inv, REPLY_END[30])
    extend_reply(inv, REPLY_LIMIT)
    reply(inv, REPLY_LIMIT - MS, "especially_major")
    assert inv.view()["reply"]["late"] is False
    with pytest.raises(Refused, match="reply was recorded"):
        extend_reply(inv, REPLY_LIMIT)


def test_a_reply_at_the_end_of_the_60th_day_is_late_even_when_extended():
    inv = opened("especially_major")
    submit(inv, SUBMITTED, "especially_major")
    extend_reply(inv, REPLY_LIMIT)
    reply(inv, REPLY_LIMIT, "especially_major")
    assert inv.view()["reply"]["late"] is True


def test_reply_before_report_and_close_before_reply_are_refused():
    inv = opened()
    with pytest.raises(Refused, match=r"cannot record the reply .* not submitted yet"):
        reply(inv, SUBMITTED)
    with pytest.raises(Refused, match=r"closed after the government's reply .* Art. 32"):
        inv.close(cmd(CloseInvestigation), node())
    submit(inv, SUBMITTED)
    with pytest.raises(Invalid, match="earlier than the report"):
        reply(inv, SUBMITTED - MS)
    with pytest.raises(Refused, match="reply is not recorded"):
        inv.close(cmd(CloseInvestigation), node())
    reply(inv, SUBMITTED + timedelta(days=10))
    with pytest.raises(Refused, match="already recorded"):
        reply(inv, SUBMITTED + timedelta(days=11))
    inv.close(cmd(CloseInvestigation, note="责任追究已落实"), node())
    assert inv.view()["status"] == "closed"
    with pytest.raises(Refused, match="was closed"):
        inv.close(cmd(CloseInvestigation), node())
    with pytest.raises(Refused, match="was closed"):
        correct(inv, leader="周强", reason="更正")
    inv.void(cmd(VoidCommand, reason="误立, 已结案"), node())  # a closed record can still be voided
    assert inv.voided is not None


def test_only_the_owning_tier_records_on_it():
    inv = opened("major")
    body = cmd(SubmitReport, submitted_at=SUBMITTED.isoformat(), summary="x1")
    with pytest.raises(Refused, match=r"belongs to the province node.*this is a county node"):
        inv.submit_report(body, node("general"))


# -- corrections, voids, replay -----------------------------------------------------------------


def test_corrections():
    inv = opened()
    correct(inv, leader="周强", reason="组长调整录入错误")
    assert inv.view()["leader"] == "周强"
    assert inv.pending_events[-1].payload() == {
        "changes": {"leader": "周强"},
        "reason": "组长调整录入错误",
    }
    with pytest.raises(Invalid, match="changes nothing"):
        correct(inv, leader="周强", reason="again")
    with pytest.raises(Invalid, match="no report was recorded"):
        correct(inv, submitted_at=SUBMITTED.isoformat(), reason="提前")
    with pytest.raises(ValidationError, match="no field"):
        cmd(CorrectInvestigation, expected_version=1, reason="nothing")
    submit(inv, REPORT_END)
    assert inv.view()["report"]["late"] is True
    correct(inv, submitted_at=(REPORT_END - MS).isoformat(), reason="日期")
    v = inv.view()
    assert v["report"]["late"] is False
    # received on 03-11 (at 23:59:59.999): 15 days run to 03-26 24:00
    assert v["reply"]["due"] == iso(to_ms(datetime(2026, 3, 27, tzinfo=CHINA)))


def test_a_correction_names_the_version_it_revises():
    with pytest.raises(ValidationError, match="expected_version"):
        cmd(CorrectInvestigation, leader="周强", reason="更正")
    with pytest.raises(ValidationError, match="expected_version"):
        cmd(CorrectInvestigation, expected_version=0, leader="周强", reason="更正")
    with pytest.raises(ValidationError, match="replied_at"):
        cmd(
            CorrectInvestigation, expected_version=3, replied_at="2100-06-01T00:00:00Z", reason="x1"
        )


def test_a_correction_keeps_the_reply_after_the_report():
    inv = opened()
    submit(inv, SUBMITTED)
    reply(inv, SUBMITTED + timedelta(days=5))
    late = (SUBMITTED + timedelta(days=6)).isoformat()
    with pytest.raises(Invalid, match="earlier than the report"):
        correct(inv, submitted_at=late, reason="日期")


def test_a_correction_cannot_push_an_extended_reply_past_its_limit():
    inv = opened("especially_major")
    submit(inv, SUBMITTED, "especially_major")
    extend_reply(inv, REPLY_LIMIT)
    earlier = (SUBMITTED - timedelta(days=1)).isoformat()
    with pytest.raises(Refused, match=r"would exceed the limit 2026-04-30T00:00:00\+08:00"):
        correct(inv, "especially_major", submitted_at=earlier, reason="日期")


def test_a_voided_investigation_refuses_everything():
    inv = opened()
    inv.void(cmd(VoidCommand, reason="误立"), node())
    assert inv.pending_events[-1].NAME == "investigation.voided/1"
    with pytest.raises(Refused, match="voided"):
        submit(inv, SUBMITTED)
    with pytest.raises(Refused, match="voided"):
        extend_report(inv, REPORT_EXTENDED)
    with pytest.raises(Refused, match="voided"):
        inv.void(cmd(VoidCommand, reason="again"), node())


def test_replay_gives_the_same_state():
    g = "especially_major"
    inv = opened(g)
    extend_report(inv, datetime(2026, 4, 21, tzinfo=CHINA), g)  # to the end of 04-20
    submitted = datetime(2026, 4, 21, 9, 0, tzinfo=CHINA)  # 04-21: late
    submit(inv, submitted, g)
    extend_reply(inv, datetime(2026, 6, 10, tzinfo=CHINA))  # limit: 06-20 24:00
    reply(inv, datetime(2026, 6, 9, 17, 0, tzinfo=CHINA), g)
    correct(inv, g, members=["钱伟"], reason="成员调整")
    inv.close(cmd(CloseInvestigation), node(g))
    events = inv.collect_events()
    again = Investigation.replay(events)
    assert again is not None and again.view() == inv.view()
    assert again.view()["report"]["late"] is True and again.view()["reply"]["late"] is False
    assert again.view()["reply"]["extendable_to"] == iso(to_ms(datetime(2026, 6, 21, tzinfo=CHINA)))
