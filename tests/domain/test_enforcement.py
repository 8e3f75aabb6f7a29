import dataclasses
import uuid
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.base import CHINA, DAY_MS, Actor, Context, VoidCommand, iso, to_ms
from domain.calendar import WorkCalendar
from domain.enforcement import commands as c
from domain.enforcement.case import EnforcementCase
from domain.errors import Invalid, Refused
from tests.domain.workdays import SHIPPED, WITH_2027
from tests.factories import INSPECTORS, NOW, ctx, inspection, js

T0 = to_ms(NOW)  # Sunday 29 November 2026, 16:00 China time


class Case:
    """Drives one case through its commands with a moving clock, counting working days by
    ``calendar`` (the shipped schedule and the test's 2027, as a node with [calendar] would)."""

    def __init__(self, calendar: WorkCalendar = WITH_2027, **over):
        self.now = T0
        self.calendar = calendar
        self.agg = EnforcementCase.open_inspection(
            c.OpenInspection.model_validate_json(js(inspection(**over))), ctx()
        )

    def at(self, days: float):
        self.now = T0 + int(days * DAY_MS)
        return self

    def on(self, moment: datetime):
        """The clock at an aware datetime (ms precision)."""
        self.now = to_ms(moment)
        return self

    def do(self, command_method: str, model: type, /, **body):
        context = Context(
            Actor("zhang", "130102"), self.now, "county", "130102", uuid.uuid4, self.calendar
        )
        getattr(self.agg, command_method)(model.model_validate_json(js(body)), context)
        return self

    @property
    def stage(self):
        return self.agg.stage.value


MS = timedelta(milliseconds=1)


def cst(*args):
    return datetime(*args, tzinfo=CHINA)


def deadline(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat()


def test_the_whole_lifecycle_from_inspection_to_closing():
    k = Case()
    k.do("record_hazard", c.RecordHazard, hazard_class="major", description="瓦斯抽采不达标")
    k.do(
        "record_hazard",
        c.RecordHazard,
        hazard_class="general",
        description="灭火器过期",
        rectified_on_site=True,
    )
    k.do(
        "take_measure",
        c.TakeMeasure,
        measure="suspend_production",
        description="责令暂时停产",
        hazards=[1],
    )
    k.do(
        "order_rectification",
        c.OrderRectification,
        deadline=deadline(30),
        hazards=[1],
        document_no="冀安监责改〔2026〕1号",
    )
    k.at(15).do(
        "request_extension", c.RequestExtension, new_deadline=deadline(45), reason="设备到货延迟"
    )
    k.at(16).do("decide_extension", c.DecideExtension, granted=True, reason="理由成立")
    assert k.agg.order["deadline"] == T0 + 45 * DAY_MS
    k.at(46).do("reinspect", c.Reinspect, passed=False, findings="仍未整改", inspectors=INSPECTORS)
    assert k.stage == "rectification_failed"
    k.at(47).do(
        "file_case", c.FileCase, violations="未按期整改重大事故隐患 (安全生产法第一百零二条)"
    )
    k.do(
        "record_evidence",
        c.RecordEvidence,
        evidence_type="询问笔录",
        description="询问矿长",
        collected_by=INSPECTORS,
    )
    k.at(50).do(
        "notify_penalty",
        c.NotifyPenalty,
        penalties=[{"type": "fine", "amount_yuan": 50000}, {"type": "suspend_production"}],
        facts="事实",
    )
    k.at(51).do("request_hearing", c.RequestHearing)
    # told the time and place on Tuesday 19 January 2027: 7 working days, then the hearing
    k.at(61).do(
        "hold_hearing",
        c.HoldHearing,
        outcome="维持",
        notified_at=deadline(51),
        place="县应急管理局听证室",
    )
    k.at(62).do(
        "decide_penalty",
        c.DecidePenalty,
        decision_no="冀安监罚〔2026〕8号",
        penalties=[{"type": "fine", "amount_yuan": 50000}, {"type": "suspend_production"}],
    )
    k.at(63).do("serve_decision", c.ServeDecision, served_at=deadline(63), method="直接送达")
    k.at(70).do("execute_penalty", c.ExecutePenalty, note="罚款已缴纳")
    k.at(71).do("close", c.CloseCase, outcome="executed")
    view = k.agg.view()
    assert view["stage"] == "closed" and view["fines_yuan"] == 50000
    assert view["open_hazards"] == [1]  # never passed re-inspection: still open, penalised
    names = [e.NAME for e in k.agg.pending_events]
    assert (
        names[0] == "case.inspection_opened/1" and names[-1] == "case.closed/1" and len(names) == 17
    )


def test_an_inspection_with_a_passed_reinspection_closes_as_rectified():
    k = Case()
    k.do("record_hazard", c.RecordHazard, hazard_class="general", description="通道堵塞")
    k.do("order_rectification", c.OrderRectification, deadline=deadline(10), hazards=[1])
    k.at(11).do("reinspect", c.Reinspect, passed=True, findings="已整改", inspectors=INSPECTORS)
    assert k.agg.view()["open_hazards"] == []
    k.do("close", c.CloseCase, outcome="rectified")


def test_an_inspection_without_findings_closes():
    Case().do("close", c.CloseCase, outcome="no_findings")


@pytest.mark.parametrize(
    ("steps", "command", "message"),
    [
        (
            [],
            ("reinspect", c.Reinspect, {"passed": True, "findings": "x", "inspectors": INSPECTORS}),
            "needs a rectification order first",
        ),
        (
            [],
            (
                "request_extension",
                c.RequestExtension,
                {"new_deadline": deadline(40), "reason": "原因说明"},
            ),
            "needs a rectification order first",
        ),
        (
            [],
            (
                "order_rectification",
                c.OrderRectification,
                {"deadline": deadline(10), "hazards": [3]},
            ),
            "no hazards numbered [3]",
        ),
        (
            [],
            ("notify_penalty", c.NotifyPenalty, {"penalties": [{"type": "warning"}], "facts": "f"}),
            "follows the filing",
        ),
        (
            [],
            (
                "decide_penalty",
                c.DecidePenalty,
                {"penalties": [{"type": "warning"}], "decision_no": "1"},
            ),
            "after the notice",
        ),
        ([], ("execute_penalty", c.ExecutePenalty, {}), "after the decision is served"),
        ([], ("close", c.CloseCase, {"outcome": "executed"}), "does not fit"),
        (["hazard"], ("close", c.CloseCase, {"outcome": "no_findings"}), "with open hazards"),
        (
            ["hazard", "order"],
            ("close", c.CloseCase, {"outcome": "rectified"}),
            "has not been re-inspected",
        ),
        (
            ["file"],
            ("notify_penalty", c.NotifyPenalty, {"penalties": [{"type": "warning"}], "facts": "f"}),
            "record the evidence",
        ),
        (["file"], ("file_case", c.FileCase, {"violations": "again"}), "already filed"),
        (
            ["file"],
            ("record_hazard", c.RecordHazard, {"hazard_class": "general", "description": "d"}),
            "before a case is filed",
        ),
        (
            ["file", "evidence", "notify"],
            (
                "decide_penalty",
                c.DecidePenalty,
                {"penalties": [{"type": "warning"}], "decision_no": "1"},
            ),
            "may state a defence or request a hearing until",
        ),
        (
            ["file", "evidence", "notify"],
            ("hold_hearing", c.HoldHearing, {"outcome": "o", "notified_at": deadline(0)}),
            "no hearing is pending",
        ),
        (
            ["file", "evidence", "notify", "decide"],
            ("close", c.CloseCase, {"outcome": "executed"}),
            "has not been executed",
        ),
        (
            ["file", "evidence", "notify", "decide"],
            ("close", c.CloseCase, {"outcome": "no_penalty"}),
            "has not been executed",
        ),
        (
            ["file", "evidence", "notify", "decide"],
            ("execute_penalty", c.ExecutePenalty, {}),
            "after the decision is served",
        ),
    ],
)
def test_illegal_transitions_are_refused_with_the_rule(steps, command, message):
    k = Case()
    setups = {
        "hazard": lambda: k.do(
            "record_hazard", c.RecordHazard, hazard_class="major", description="隐患"
        ),
        "order": lambda: k.do(
            "order_rectification", c.OrderRectification, deadline=deadline(30), hazards=[1]
        ),
        "file": lambda: k.do("file_case", c.FileCase, violations="违法"),
        "evidence": lambda: k.do(
            "record_evidence",
            c.RecordEvidence,
            evidence_type="书证",
            description="d",
            collected_by=INSPECTORS,
        ),
        "notify": lambda: k.do(
            "notify_penalty", c.NotifyPenalty, penalties=[{"type": "warning"}], facts="f"
        ),
        "decide": lambda: k.at(6).do(  # after the 5 working days of the notice
            "decide_penalty", c.DecidePenalty, penalties=[{"type": "warning"}], decision_no="1"
        ),
    }
    for step in steps:
        setups[step]()
    version = k.agg.version
    method, model, body = command
    with pytest.raises((Refused, Invalid), match=message.replace("[", r"\[").replace("]", r"\]")):
        k.do(method, model, **body)
    assert k.agg.version == version  # nothing recorded


def test_extension_must_be_requested_ten_days_before_the_deadline():
    k = Case()
    k.do("record_hazard", c.RecordHazard, hazard_class="major", description="隐患")
    k.do("order_rectification", c.OrderRectification, deadline=deadline(30), hazards=[1])
    with pytest.raises(Refused, match="no later than 10 days before the deadline"):
        k.at(20 + 1 / DAY_MS).do(
            "request_extension", c.RequestExtension, new_deadline=deadline(40), reason="原因说明"
        )
    k.at(20).do(
        "request_extension", c.RequestExtension, new_deadline=deadline(40), reason="原因说明"
    )
    with pytest.raises(Refused, match="already requested"):
        k.do("request_extension", c.RequestExtension, new_deadline=deadline(41), reason="原因说明")
    k.do("decide_extension", c.DecideExtension, granted=False, reason="理由不成立")
    assert k.agg.order["deadline"] == T0 + 30 * DAY_MS


def notified(*penalties, calendar: WorkCalendar = WITH_2027):
    k = Case(calendar)
    k.do("file_case", c.FileCase, violations="违法")
    k.do(
        "record_evidence",
        c.RecordEvidence,
        evidence_type="书证",
        description="d",
        collected_by=INSPECTORS,
    )
    k.do("notify_penalty", c.NotifyPenalty, penalties=list(penalties), facts="f")
    return k


# The notice is given at 16:00 China time on Sunday 29 November: the 5 working days are Monday
# 30 Nov to Friday 4 Dec, and the window closes at 24:00 China time on 4 December, 5 days and
# 8 hours later.
WINDOW_END = 5 + 8 / 24


def test_the_hearing_window_counts_days_as_the_law_does():
    k = notified({"type": "fine", "amount_yuan": 3000})
    closes = cst(2026, 12, 5)
    assert to_ms(closes) == T0 + int(WINDOW_END * DAY_MS)
    assert k.agg.view()["notice"]["hearing_window_ends"] == "2026-12-05T00:00:00+08:00"
    with pytest.raises(Refused, match=r"closed at .*5 working days .*Arts. 64\(1\), 85"):
        k.on(closes).do("request_hearing", c.RequestHearing)
    with pytest.raises(Refused, match="decide after that"):
        k.on(closes - MS).do(
            "decide_penalty", c.DecidePenalty, penalties=[{"type": "warning"}], decision_no="1"
        )
    k.on(closes - MS).do("request_hearing", c.RequestHearing)  # 23:59:59.999 on the last day


def test_the_decision_is_no_heavier_than_the_notice():
    k = notified({"type": "fine", "amount_yuan": 20000})
    k.at(WINDOW_END + 1)
    for penalties, message in (
        ([{"type": "fine", "amount_yuan": 50000}], "more than the 20000 yuan noticed"),
        (
            [{"type": "fine", "amount_yuan": 20000}, {"type": "closure"}],
            "closure was not in the notice",
        ),
    ):
        with pytest.raises(Refused, match=message):
            k.do("decide_penalty", c.DecidePenalty, penalties=penalties, decision_no="1")
    k.do(
        "notify_penalty",
        c.NotifyPenalty,
        penalties=[{"type": "fine", "amount_yuan": 50000}],
        facts="加重",
    )
    with pytest.raises(Refused, match="decide after that"):  # a new notice, a new window
        k.do(
            "decide_penalty",
            c.DecidePenalty,
            penalties=[{"type": "fine", "amount_yuan": 50000}],
            decision_no="1",
        )
    # given at 00:00 on Sunday 6 December, the new notice's window closes at 24:00 on Friday 11
    k.on(cst(2026, 12, 12)).do(
        "decide_penalty",
        c.DecidePenalty,
        penalties=[{"type": "fine", "amount_yuan": 45000}, {"type": "warning"}],
        decision_no="1",
    )


def test_a_county_recommends_licence_suspension_instead_of_deciding_it():
    k = Case()
    k.do("file_case", c.FileCase, violations="违法")
    with pytest.raises(Refused, match="recommendation to the issuer"):
        k.do("notify_penalty", c.NotifyPenalty, penalties=[{"type": "revoke_licence"}], facts="f")


def test_closing_as_rectified_needs_every_hazard_rectified():
    k = Case()
    k.do("record_hazard", c.RecordHazard, hazard_class="major", description="瓦斯超限")
    k.do("record_hazard", c.RecordHazard, hazard_class="major", description="通风系统不合理")
    k.do("order_rectification", c.OrderRectification, deadline=deadline(10), hazards=[1])
    k.at(11).do("reinspect", c.Reinspect, passed=True, findings="1号已整改", inspectors=INSPECTORS)
    with pytest.raises(Refused, match="with open hazards"):
        k.do("close", c.CloseCase, outcome="rectified")


def test_a_transferred_case_closes_whatever_its_stage():
    k = Case()
    k.do("record_hazard", c.RecordHazard, hazard_class="major", description="隐患")
    k.do("order_rectification", c.OrderRectification, deadline=deadline(30), hazards=[1])
    k.do("transfer", c.TransferCase, to_authority="公安机关", reason="涉嫌犯罪")
    k.do("close", c.CloseCase, outcome="transferred")
    assert k.stage == "closed"


def test_reinspection_and_evidence_need_two_distinct_officers():
    same = [INSPECTORS[0], INSPECTORS[0]]
    with pytest.raises(ValidationError, match="listed twice"):
        c.Reinspect.model_validate_json(js({"passed": True, "findings": "f", "inspectors": same}))
    with pytest.raises(ValidationError, match="listed twice"):
        c.RecordEvidence.model_validate_json(
            js({"evidence_type": "书证", "description": "d", "collected_by": same})
        )


@pytest.mark.parametrize(
    ("penalty", "message"),
    [
        ({"type": "flogging"}, "Input should be"),
        ({"type": "fine", "amount_yuan": -100}, "greater than or equal to 0"),
        ({"type": "fine"}, "needs a positive amount_yuan"),
        ({"type": "fine", "amount_yuan": 0}, "needs a positive amount_yuan"),
        ({"type": "warning", "amount_yuan": 100}, "carries no amount"),
        ({"type": "fine", "amount_yuan": 10.5}, "valid integer"),
    ],
)
def test_bad_penalties_are_refused(penalty, message):
    with pytest.raises(ValidationError, match=message):
        c.DecidePenalty.model_validate_json(js({"penalties": [penalty], "decision_no": "1"}))


def test_an_inspection_needs_two_distinct_inspectors_and_a_local_site():
    with pytest.raises(ValidationError, match="at least two enforcement officers"):
        c.OpenInspection.model_validate_json(js(inspection(inspectors=INSPECTORS[:1])))
    with pytest.raises(ValidationError, match="listed twice"):
        c.OpenInspection.model_validate_json(
            js(inspection(inspectors=[INSPECTORS[0], INSPECTORS[0]]))
        )
    with pytest.raises(Invalid, match="outside this node's area"):
        Case(division="130104")


def test_transfer_recommendation_correction_void():
    k = Case()
    k.do(
        "recommend_licence_action",
        c.RecommendLicenceAction,
        licence_number="（冀）MK安许证字〔2024〕0012",
        action="suspend",
        reason="重大隐患未整改",
    )
    with pytest.raises(ValidationError):
        c.RecommendLicenceAction.model_validate_json(
            js({"licence_number": "x", "action": "burn", "reason": "ab"})
        )
    k.do(
        "transfer",
        c.TransferCase,
        to_authority="石家庄市公安局长安分局",
        reason="涉嫌重大责任事故罪",
    )
    k.do(
        "correct",
        c.CorrectCase,
        enterprise_name="更正后的名称",
        reason="名称录入错误",
        expected_version=k.agg.version,
    )
    assert k.agg.facts["enterprise_name"] == "更正后的名称"
    k.do("close", c.CloseCase, outcome="transferred")
    with pytest.raises(Refused, match="closed"):
        k.do("transfer", c.TransferCase, to_authority="x", reason="again")
    k.do("void", VoidCommand, reason="重复录入")
    with pytest.raises(Refused, match="voided"):
        k.do("correct", c.CorrectCase, subject="x", reason="again", expected_version=k.agg.version)
    assert EnforcementCase.replay(k.agg.collect_events()).view() == k.agg.view()


# -- periods in working days (行政处罚法 Art. 85) --------------------------------------------------


def notified_on(moment, calendar: WorkCalendar = WITH_2027):
    """A case filed and noticed at ``moment`` (its inspection at the tests' NOW)."""
    k = Case(calendar)
    k.on(moment).do("file_case", c.FileCase, violations="违法")
    k.do(
        "record_evidence",
        c.RecordEvidence,
        evidence_type="书证",
        description="d",
        collected_by=INSPECTORS,
    )
    k.do("notify_penalty", c.NotifyPenalty, penalties=[{"type": "warning"}], facts="f")
    return k


def decide(k):
    k.do("decide_penalty", c.DecidePenalty, penalties=[{"type": "warning"}], decision_no="1")


# Noticed on Wednesday 30 September 2026: 1–7 October are off, so the 5 working days are 8 (Thu),
# 9 (Fri), 10 (Sat, a make-up working day), 12 (Mon) and 13 (Tue) October.
NATIONAL_DAY_NOTICE = cst(2026, 9, 30, 10)
FIFTH_WORKING_DAY_ENDS = cst(2026, 10, 14)


@pytest.mark.parametrize(
    ("requested", "accepted"),
    [
        (cst(2026, 10, 8, 9), True),  # 1st working day after the holiday
        (cst(2026, 10, 10, 9), True),  # Saturday worked (调休上班)
        (FIFTH_WORKING_DAY_ENDS - MS, True),  # 23:59:59.999 on the 5th working day
        (FIFTH_WORKING_DAY_ENDS, False),  # 00:00 on the 6th (Wednesday 14 October)
        (cst(2026, 10, 14, 9), False),
    ],
    ids=str,
)
def test_a_hearing_request_across_national_day(requested, accepted):
    k = notified_on(NATIONAL_DAY_NOTICE)
    assert k.agg.view()["notice"]["hearing_window_ends"] == iso(to_ms(FIFTH_WORKING_DAY_ENDS))
    k.on(requested)
    if accepted:
        k.do("request_hearing", c.RequestHearing)
        assert k.agg.notice["hearing"]["requested_at"] == to_ms(requested)
    else:
        with pytest.raises(Refused, match="the window to request a hearing closed at"):
            k.do("request_hearing", c.RequestHearing)


@pytest.mark.parametrize(
    ("decided", "accepted"),
    [
        (cst(2026, 10, 7, 9), False),  # within the holiday: only 0 working days have passed
        (FIFTH_WORKING_DAY_ENDS - MS, False),
        (FIFTH_WORKING_DAY_ENDS, True),
    ],
    ids=str,
)
def test_a_decision_waits_for_the_working_days_of_the_notice(decided, accepted):
    k = notified_on(NATIONAL_DAY_NOTICE).on(decided)
    if accepted:
        decide(k)
        assert k.stage == "decided"
    else:
        with pytest.raises(Refused, match="may state a defence or request a hearing until"):
            decide(k)
        assert k.stage == "notified"


def test_a_make_up_working_day_shortens_the_window_in_days():
    # noticed on Friday 18 September: Sunday 20 is worked, so the 5th working day is Thursday 24
    # (中秋 is 25–27); without counting it the window would run to Monday 28
    k = notified_on(cst(2026, 9, 18, 15))
    assert k.agg.view()["notice"]["hearing_window_ends"] == iso(to_ms(cst(2026, 9, 25)))
    with pytest.raises(Refused, match="closed at"):
        k.on(cst(2026, 9, 28, 9)).do("request_hearing", c.RequestHearing)


def test_a_window_into_2027_needs_the_year_s_schedule():
    # noticed on Monday 28 December 2026: the 5 working days run into 2027
    with pytest.raises(Refused) as e:
        notified_on(cst(2026, 12, 28, 10), SHIPPED)
    message = str(e.value)
    assert message.startswith("the window to request a hearing (行政处罚法 Art. 64(1)) cannot")
    assert "the working days of 2027 are not known" in message
    assert "[calendar] holidays" in message and "workdays" in message
    # with the year supplied: 29, 30, 31 December, then 4 and 5 January (1–3 January off)
    k = notified_on(cst(2026, 12, 28, 10), WITH_2027)
    assert k.agg.view()["notice"]["hearing_window_ends"] == iso(to_ms(cst(2027, 1, 6)))


def test_a_refused_notice_records_nothing():
    k = Case(SHIPPED)
    k.on(cst(2026, 12, 28, 10)).do("file_case", c.FileCase, violations="违法")
    k.do(
        "record_evidence",
        c.RecordEvidence,
        evidence_type="书证",
        description="d",
        collected_by=INSPECTORS,
    )
    version = k.agg.version
    with pytest.raises(Refused, match="2027"):
        k.do("notify_penalty", c.NotifyPenalty, penalties=[{"type": "warning"}], facts="f")
    assert k.agg.version == version and k.stage == "filed"


# Decided on Wednesday 14 October 2026: served within 7 working days (Art. 61), by the end of
# Friday 23 October (15, 16, 19, 20, 21, 22, 23).
SERVICE_DUE = cst(2026, 10, 24)


@pytest.mark.parametrize(
    ("served", "late"), [(SERVICE_DUE - MS, False), (SERVICE_DUE, True)], ids=str
)
def test_service_of_the_decision_is_due_in_seven_working_days(served, late):
    k = notified_on(NATIONAL_DAY_NOTICE).on(FIFTH_WORKING_DAY_ENDS)
    decide(k)
    assert k.agg.view()["decision"]["service_due"] == iso(to_ms(SERVICE_DUE))
    k.on(served + timedelta(hours=1)).do(
        "serve_decision", c.ServeDecision, served_at=served.isoformat(), method="邮寄送达"
    )
    assert k.agg.view()["decision"]["served"]["late"] is late


def test_a_decision_whose_service_runs_into_an_unknown_year_is_refused():
    # noticed on Friday 18 December 2026, the window closes at 24:00 on Friday 25; a decision on
    # Monday 28 has its 7 working days of service run into 2027
    k = notified_on(cst(2026, 12, 18, 10), SHIPPED).on(cst(2026, 12, 28, 10))
    with pytest.raises(Refused, match=r"service of the decision .*Art. 61.* 2027"):
        decide(k)
    assert k.stage == "notified"


def test_notices_and_decisions_recorded_before_keep_their_rules():
    """Events recorded before working days carry no window end or service due: a notice keeps the 3
    calendar days it was given with, a decision has no due date for its service."""
    k = notified_on(cst(2026, 9, 30, 10))
    k.on(FIFTH_WORKING_DAY_ENDS)
    decide(k)
    k.do(
        "serve_decision",
        c.ServeDecision,
        served_at=FIFTH_WORKING_DAY_ENDS.isoformat(),
        method="直接送达",
    )
    old = []
    for event in k.agg.collect_events():
        payload = event.payload()
        if event.NAME == "case.penalty_notified/1":
            assert payload.pop("hearing_window_ends") is not None
        if event.NAME == "case.penalty_decided/1":
            assert payload.pop("service_due") is not None
        common = {
            "originator_id": event.originator_id,
            "originator_version": event.originator_version,
            "recorded_at": event.recorded_at,
            "actor": event.actor,
        }
        old.append(type(event)(**common, **payload))
    replayed = EnforcementCase.replay(old)
    assert replayed is not None
    view = replayed.view()
    # 30 September 10:00 + 3 calendar days (1, 2, 3 October) → 24:00 on 3 October
    assert view["notice"]["hearing_window_ends"] == iso(to_ms(cst(2026, 10, 4)))
    assert view["decision"]["service_due"] is None
    assert view["decision"]["served"]["late"] is None


# -- the hearing's notification (行政处罚法 Arts. 64(2), 85) -------------------------------------


def hearing_requested():
    """Noticed on Wednesday 30 September 2026, a hearing requested on Thursday 8 October."""
    k = notified_on(NATIONAL_DAY_NOTICE)
    k.on(cst(2026, 10, 8, 9)).do("request_hearing", c.RequestHearing)
    return k


def hold(k, notified: datetime, **more):
    k.do("hold_hearing", c.HoldHearing, outcome="维持", notified_at=notified.isoformat(), **more)


# Told the time and place on Friday 9 October 2026: the 7 working days are 10 (Saturday, worked),
# 12, 13, 14, 15, 16 and 19 October; the hearing is held from 00:00 on Tuesday 20 October.
TOLD = cst(2026, 10, 9, 15)
SEVENTH_WORKING_DAY_ENDS = cst(2026, 10, 20)


@pytest.mark.parametrize(
    ("held", "accepted"),
    [
        (cst(2026, 10, 16, 9), False),  # 7 calendar days later: only 5 working days
        (cst(2026, 10, 19, 9), False),  # on the 7th working day
        (SEVENTH_WORKING_DAY_ENDS - MS, False),
        (SEVENTH_WORKING_DAY_ENDS, True),
        (cst(2026, 10, 20, 9), True),
    ],
    ids=str,
)
def test_a_hearing_is_held_7_working_days_after_the_parties_are_told(held, accepted):
    k = hearing_requested().on(held)
    if accepted:
        hold(k, TOLD, place="县应急管理局听证室")
        record = k.agg.view()["notice"]["hearing"]["held"]
        assert record["notified_at"] == iso(to_ms(TOLD)) and record["at"] == iso(to_ms(held))
        assert record["place"] == "县应急管理局听证室"
    else:
        version = k.agg.version
        with pytest.raises(Refused) as e:
            hold(k, TOLD)
        message = str(e.value)
        assert "行政处罚法 Arts. 64(2), 85" in message and "at least 7 working days" in message
        assert "it may be held from 2026-10-20T00:00:00+08:00" in message
        assert k.agg.version == version


def test_a_hearing_recorded_after_it_was_held_is_judged_by_when_it_was_held():
    k = hearing_requested().on(cst(2026, 10, 22, 9))  # recorded on Thursday 22 October
    with pytest.raises(Refused, match="is too early"):
        hold(k, TOLD, held_at=cst(2026, 10, 19, 14).isoformat())
    hold(k, TOLD, held_at=cst(2026, 10, 20, 14).isoformat())
    assert k.agg.notice["hearing"]["held"]["at"] == to_ms(cst(2026, 10, 20, 14))
    k.do("decide_penalty", c.DecidePenalty, penalties=[{"type": "warning"}], decision_no="1")


@pytest.mark.parametrize(
    ("notified", "held_at", "field", "message"),
    [
        (cst(2026, 9, 30, 9), None, "notified_at", "after the notice of penalty"),
        (cst(2026, 10, 30, 9), None, "notified_at", "is in the future"),
        (TOLD, cst(2026, 10, 30, 9), "held_at", "is in the future"),
    ],
    ids=["before the notice", "notified in the future", "held in the future"],
)
def test_the_hearing_s_times_are_checked(notified, held_at, field, message):
    k = hearing_requested().on(cst(2026, 10, 21, 9))
    more = {} if held_at is None else {"held_at": held_at.isoformat()}
    with pytest.raises(Invalid) as e:
        hold(k, notified, **more)
    (error,) = e.value.errors
    assert error.field == field and message in str(error.message)


def test_a_hearing_notified_into_an_unknown_year_is_refused():
    # told on Wednesday 23 December 2026: 24, 25, 28, 29, 30, 31, then 2027
    k = notified_on(cst(2026, 12, 14, 10), SHIPPED)
    k.on(cst(2026, 12, 15, 9)).do("request_hearing", c.RequestHearing)
    k.on(cst(2026, 12, 31, 9))
    with pytest.raises(Refused, match=r"hearing's notification .*Art. 64\(2\).* 2027 are not"):
        hold(k, cst(2026, 12, 23, 9))
    # told on Tuesday 22 December: 23, 24, 25, 28, 29, 30, 31, all in 2026
    with pytest.raises(Refused, match="it may be held from 2027-01-01T00:00:00"):
        hold(k, cst(2026, 12, 22, 9))


def test_a_hearing_recorded_before_its_notification_was_kept_stays_valid():
    """A case.hearing_held/1 of an earlier version has no notified_at, held_at or place: it
    replays as held when it was recorded."""
    k = hearing_requested().on(SEVENTH_WORKING_DAY_ENDS)
    hold(k, TOLD)
    old = []
    for event in k.agg.collect_events():
        payload = event.payload()
        if event.NAME == "case.hearing_held/1":
            for key in ("notified_at", "held_at", "place"):
                payload.pop(key)
        common = {
            "originator_id": event.originator_id,
            "originator_version": event.originator_version,
            "recorded_at": event.recorded_at,
            "actor": event.actor,
        }
        old.append(type(event)(**common, **payload))
    replayed = EnforcementCase.replay(old)
    assert replayed is not None
    held = replayed.view()["notice"]["hearing"]["held"]
    assert held == {
        "at": iso(to_ms(SEVENTH_WORKING_DAY_ENDS)),
        "outcome": "维持",
        "notified_at": None,
        "place": None,
    }


def test_decisions_from_23_december_2026_need_2027_s_schedule():
    """docs/domain.md §9: the 7 working days of service from Tuesday 22 December end on Thursday
    31; from Wednesday 23 they run into 2027."""
    k = notified_on(cst(2026, 12, 14, 10), SHIPPED)  # the window closes at 24:00 on Monday 21
    k.on(cst(2026, 12, 22, 23, 59))
    decide(k)
    assert k.agg.view()["decision"]["service_due"] == iso(to_ms(cst(2027, 1, 1)))
    k = notified_on(cst(2026, 12, 14, 10), SHIPPED).on(cst(2026, 12, 23))
    with pytest.raises(Refused, match="2027"):
        decide(k)


def test_the_application_gives_the_new_case_s_id():
    given = uuid.UUID("5c1d7a52-8f0e-4b8a-9d3e-2f6a1b0c9e47")
    here = dataclasses.replace(ctx(), new_id=lambda: given)
    case = EnforcementCase.open_inspection(
        c.OpenInspection.model_validate_json(js(inspection())), here
    )
    assert case.id == given and case.pending_events[0].originator_id == given
