"""The domain's refusals read in the reader's language: Chinese (zh-CN, the default) and English,
the law they cite named in both (docs/domain.md). A sample of each kind: a window of the penalty
procedure, a grade and a deadline of 493号令, a licence renewal, and pydantic's errors in our
words. The suite runs in English (tests/conftest.py); these ask for each language."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.base import CHINA, Actor, Context, to_ms
from domain.commands import BY_KIND
from domain.enforcement import commands as c
from domain.enforcement.case import EnforcementCase
from domain.errors import Invalid, Refused, field_errors
from domain.i18n import EN, ZH, gettext, speaking
from domain.investigation import ExtendReport, Investigation, OpenInvestigation
from domain.licence import AcceptLicence, ApplyLicence, ApplyRenewal, IssueLicence, Licence
from tests.domain.workdays import WITH_2027
from tests.factories import INSPECTORS, NOW, credit_code, ctx, inspection, js

T0 = to_ms(NOW)  # Sunday 29 November 2026, 16:00 China time
ACCIDENT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def refusal(action) -> Refused:
    with pytest.raises(Refused) as e:
        action()
    return e.value


def invalid(action) -> Invalid:
    with pytest.raises(Invalid) as e:
        action()
    return e.value


# -- the penalty procedure: the hearing window (行政处罚法) ------------------------------------


def case_at(now_ms: int) -> Context:
    return Context(Actor("zhang", "130102"), now_ms, "county", "130102", uuid.uuid4, WITH_2027)


def notified_case() -> EnforcementCase:
    case = EnforcementCase.open_inspection(
        c.OpenInspection.model_validate_json(js(inspection())), ctx()
    )
    case.file_case(c.FileCase(violations="违法"), case_at(T0))
    evidence = {"evidence_type": "书证", "description": "d", "collected_by": INSPECTORS}
    case.record_evidence(c.RecordEvidence.model_validate_json(js(evidence)), case_at(T0))
    notice = {"penalties": [{"type": "fine", "amount_yuan": 3000}], "facts": "f"}
    case.notify_penalty(c.NotifyPenalty.model_validate_json(js(notice)), case_at(T0))
    return case


def test_a_hearing_requested_after_its_window_is_refused_in_chinese_and_english():
    case = notified_case()
    closed = to_ms(datetime(2026, 12, 5, tzinfo=CHINA))  # 5 working days after the notice
    e = refusal(lambda: case.request_hearing(c.RequestHearing(), case_at(closed)))
    assert e.code == "refused"
    assert e.message(ZH) == (
        "申请听证的时间窗已于 2026-12-05T00:00:00+08:00 结束：听证应在告知后 5 个工作日内申请"
        "（《行政处罚法》第六十四条第（一）项、第八十五条）；现在是 2026-12-05T00:00:00+08:00"
    )
    assert e.message(EN) == (
        "the window to request a hearing closed at 2026-12-05T00:00:00+08:00: a hearing is "
        "requested within 5 working days of the notice (行政处罚法 Arts. 64(1), 85); it is now "
        "2026-12-05T00:00:00+08:00"
    )
    with speaking(ZH):  # str() reads in the current reader's language
        assert str(e).startswith("申请听证的时间窗已于")
    assert str(e).startswith("the window to request a hearing")  # the suite reads English


def test_a_step_out_of_order_names_the_stage_in_the_reader_s_language():
    case = notified_case()
    e = refusal(
        lambda: case.serve_decision(
            c.ServeDecision.model_validate_json(
                js({"served_at": NOW.isoformat(), "method": "直接"})
            ),
            case_at(T0),
        )
    )
    assert e.message(ZH) == "处罚决定在作出之后送达；本案件当前为“已告知”"
    assert e.message(EN) == "a decision is served after it is made; the case is notified"


def test_a_hearing_held_too_soon_after_its_notification_names_art_64_2_in_both():
    case = notified_case()
    case.request_hearing(c.RequestHearing(), case_at(T0 + 24 * 3_600_000))
    told = datetime(2026, 12, 1, 10, tzinfo=CHINA)  # Tuesday: 2–4 and 7–10 December
    held = to_ms(datetime(2026, 12, 10, 15, tzinfo=CHINA))
    hold = {"outcome": "维持", "notified_at": told.isoformat()}
    e = refusal(
        lambda: case.hold_hearing(c.HoldHearing.model_validate_json(js(hold)), case_at(held))
    )
    assert e.message(ZH) == (
        "2026-12-10T15:00:00+08:00 举行听证过早：行政机关应当在举行听证的 7 个工作日前通知当事人"
        "及有关人员听证的时间、地点（《行政处罚法》第六十四条第（二）项、第八十五条）；于 "
        "2026-12-01T10:00:00+08:00 通知的，最早可于 2026-12-11T00:00:00+08:00 举行"
    )
    assert e.message(EN) == (
        "a hearing at 2026-12-10T15:00:00+08:00 is too early: the parties are told its time and "
        "place at least 7 working days before it (行政处罚法 Arts. 64(2), 85); told at "
        "2026-12-01T10:00:00+08:00, it may be held from 2026-12-11T00:00:00+08:00"
    )


# -- accidents: the grade and the deadlines of 493号令 ------------------------------------------


def accident(grade: str) -> dict[str, object]:
    occurred = to_ms(datetime(2026, 1, 10, 14, 0, tzinfo=CHINA))
    return {
        "id": ACCIDENT_ID,
        "grade": grade,
        "occurred_at": occurred,
        "division": "130102",
        "voided": False,
    }


def open_command() -> OpenInvestigation:
    return OpenInvestigation.model_validate_json(
        js({"accident_id": ACCIDENT_ID, "leader": "赵建华"})
    )


def test_a_county_opening_a_larger_accident_s_investigation_is_refused_by_its_grade():
    county = ctx(tier="county", region="130102")
    e = refusal(lambda: Investigation.open(open_command(), county, accident("larger")))
    assert e.message(ZH) == (
        f"事故 {ACCIDENT_ID} 为较大事故（larger）：130102 的较大事故由市级人民政府（130100；"
        "493号令第十九条）或其上级人民政府（第二十条）负责调查，而本节点是县级节点"
    )
    assert e.message(EN) == (
        f"accident {ACCIDENT_ID} is 较大 (larger): a 较大 accident in 130102 is investigated by "
        "the city government (130100; 493号令 Art. 19) or one above it (Art. 20), and this is "
        "a county node"
    )


def test_a_report_deadline_past_120_days_is_refused_citing_article_29():
    county = ctx(tier="county", region="130102")
    inv = Investigation.open(open_command(), county, accident("general"))
    late = datetime(2026, 5, 11, tzinfo=CHINA) + timedelta(milliseconds=1)
    body = ExtendReport.model_validate_json(
        js({"expected_version": 1, "until": late.isoformat(), "reason": "需要技术鉴定"})
    )
    e = refusal(lambda: inv.extend_report(body, county))
    assert e.message(ZH) == (
        "调查报告的期限最多可延长至自事故发生之日起 120 日，即 2026-05-11T00:00:00+08:00（末日"
        "北京时间 24:00）；2026-05-11T00:00:00.001+08:00 晚于此时间（493号令第二十九条：60 日，"
        "最长延长 60 日）"
    )
    assert e.message(EN).endswith("(493号令 Art. 29: 60 days, extended by at most 60)")


# -- licences: renewal (《安全生产许可证条例》) --------------------------------------------------


def issued_licence() -> Licence:
    province = ctx(tier="province", region="130000")
    application = {
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "石家庄某煤业有限公司",
        "industry": "coal_mine",
        "division": "130102",
        "scope": "煤炭开采",
    }
    lic = Licence.apply_for(ApplyLicence.model_validate_json(js(application)), province)
    lic.accept(AcceptLicence.model_validate_json("{}"), province)
    issue = {"number": "（冀）MK安许证字〔2026〕0042", "valid_from": "2026-05-01T00:00:00+08:00"}
    lic.issue(IssueLicence.model_validate_json(js(issue)), province)
    return lic


def test_a_renewal_after_expiry_is_refused_citing_article_9():
    lic = issued_licence()
    after = ctx(now=datetime(2029, 5, 2, tzinfo=CHINA), tier="province", region="130000")
    e = refusal(lambda: lic.apply_renewal(ApplyRenewal.model_validate_json("{}"), after))
    assert e.message(ZH) == (
        "许可证 （冀）MK安许证字〔2026〕0042 已于 2029-05-01T00:00:00+08:00 期满；现在是 "
        "2029-05-02T00:00:00+08:00：延期须在许可证有效期内申请（《安全生产许可证条例》第九条）；"
        "企业须重新申请（licence.apply）"
    )
    assert "(《安全生产许可证条例》 Art. 9)" in e.message(EN)
    assert e.message(EN).startswith("licence （冀）MK安许证字〔2026〕0042 expired at")


def test_a_county_records_no_licence_and_is_told_so_in_chinese():
    lic = issued_licence()
    county = ctx(tier="county", region="130102")
    e = refusal(lambda: lic.apply_renewal(ApplyRenewal.model_validate_json("{}"), county))
    assert "《安全生产许可证条例》第三条至第五条" in e.message(ZH)
    assert "本节点是县级节点" in e.message(ZH)
    assert "Arts. 3–5" in e.message(EN) and "this is a county node" in e.message(EN)


# -- pydantic's errors in our words ---------------------------------------------------------------


def validation_errors(model: type, body: dict[str, object]) -> Invalid:
    with pytest.raises(ValidationError) as e:
        model.model_validate_json(js(body))
    return Invalid(field_errors(e.value.errors()))


def test_a_missing_field_and_a_value_below_its_minimum_read_in_both_languages():
    e = validation_errors(
        c.NotifyPenalty,
        {"expected_version": 0, "penalties": [{"type": "fine", "amount_yuan": 3000}]},
    )
    by_field = {f.field: f for f in e.errors}
    assert by_field["facts"].code == "missing"
    assert by_field["expected_version"].code == "greater_than_equal"
    assert by_field["facts"].render(ZH)["message"] == "此字段为必填项"
    assert by_field["facts"].render(EN)["message"] == "this field is required"
    assert by_field["expected_version"].render(ZH)["message"] == "不得小于 1"
    assert by_field["expected_version"].render(EN)["message"] == "must be at least 1"
    assert e.message(ZH) == "expected_version: 不得小于 1；facts: 此字段为必填项"
    assert e.message(EN) == "expected_version: must be at least 1; facts: this field is required"


def test_our_own_validator_s_message_reads_in_both_languages():
    body = {**inspection(), "inspectors": INSPECTORS[:1]}
    e = validation_errors(c.OpenInspection, body)
    (error,) = e.errors
    assert error.field == "inspectors" and error.code == "value_error"
    assert error.render(ZH)["message"] == "执法人员不得少于两人"
    assert error.render(EN)["message"] == "at least two enforcement officers (执法人员不得少于两人)"


def test_a_mistyped_credit_code_reads_in_both_languages():
    code = credit_code(1)
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    e = validation_errors(c.OpenInspection, {**inspection(), "enterprise_credit_code": wrong})
    (error,) = e.errors
    assert error.render(ZH)["message"].startswith(f"校验码为 {wrong[17]!r}，但按 GB 32100-2015")
    assert error.render(EN)["message"].startswith(f"check character is {wrong[17]!r}")


def test_a_command_s_summary_reads_in_both_languages():
    summary = BY_KIND["accident.report"].summary
    assert gettext(summary, ZH) == "报告事故（事故快报）；事故等级按493号令确定。"
    assert gettext(summary, EN) == "Report an accident (事故快报); the grade is derived by 493号令."
