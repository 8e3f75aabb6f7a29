import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.base import CHINA, VoidCommand, iso, period_end, to_ms
from domain.codes import enterprise_id
from domain.errors import Invalid, Refused
from domain.licence import (
    AcceptLicence,
    ApplyLicence,
    ApplyRenewal,
    CancelLicence,
    CorrectLicence,
    ExpireLicence,
    ExtendLicence,
    IssueLicence,
    Licence,
    RefuseLicence,
    ReinstateLicence,
    RevokeLicence,
    SuspendLicence,
)
from domain.licence_rules import add_months, parse_licence_number
from tests.factories import NOW, credit_code, ctx, js

VALID_FROM = datetime(2026, 5, 1, tzinfo=CHINA)
VALID_UNTIL = datetime(2029, 5, 1, tzinfo=CHINA)
RENEWAL_DUE = datetime(2029, 2, 1, tzinfo=CHINA)  # Art. 9: 期满前3个月
MS = timedelta(milliseconds=1)
# NOW, when the applications are received, is 2026-11-29 16:00 China time: the 45 days
# (自收到申请之日起45日内, Art. 7) run from 30 November to 13 January, ending at 24:00.
APPLIED = datetime(2026, 11, 29, 16, 0, tzinfo=CHINA)
DECISION_END = datetime(2027, 1, 14, tzinfo=CHINA)
NUMBER = "（冀）MK安许证字〔2026〕0042"


def pctx(now=NOW, tier="province", region="130000"):
    return ctx(now=now, region=region, tier=tier)


def cmd(model, **fields):
    return model.model_validate_json(js(fields))


def application(**over):
    body = {
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "石家庄某煤业有限公司",
        "industry": "coal_mine",
        "division": "130102",
        "scope": "煤炭开采 (一号井)",
    }
    body.update(over)
    return body


def apply(when=NOW, **over):
    return Licence.apply_for(ApplyLicence.model_validate_json(js(application(**over))), pctx(when))


def issued(valid_from=VALID_FROM, number=NUMBER):
    lic = apply()
    lic.accept(cmd(AcceptLicence), pctx())
    lic.issue(cmd(IssueLicence, number=number, valid_from=valid_from.isoformat()), pctx())
    return lic


def at(moment):
    return pctx(moment)


def correction(lic, **fields):
    return cmd(CorrectLicence, expected_version=lic.version, **fields)


# -- application, acceptance, issue -------------------------------------------------------------


def test_the_way_to_an_issued_licence():
    assert APPLIED == NOW
    lic = apply()
    assert lic.view()["status"] == "applied" and lic.view()["decision_late"] is None
    assert lic.view()["decision_due"] == iso(to_ms(DECISION_END)) == "2027-01-14T00:00:00+08:00"
    lic.accept(cmd(AcceptLicence), pctx())
    assert lic.view()["decision_due"] == iso(to_ms(DECISION_END))
    lic.issue(cmd(IssueLicence, **ISSUE), pctx())
    v = lic.view()
    assert v["status"] == "issued" and v["decision_late"] is False
    assert v["number"] == NUMBER
    assert v["number_parsed"] == {
        "province_abbr": "冀",
        "industry_code": "MK",
        "year": 2026,
        "serial": "0042",
        "normalized": NUMBER,
    }
    assert v["valid_from"] == "2026-05-01T00:00:00+08:00"
    assert v["valid_until"] == iso(to_ms(VALID_UNTIL)) == "2029-05-01T00:00:00+08:00"
    assert v["renewal_due"] == iso(to_ms(RENEWAL_DUE)) == "2029-02-01T00:00:00+08:00"
    assert v["renewal_applied_at"] is None and v["renewal_late"] is None
    assert v["enterprise_id"] == str(enterprise_id(credit_code(1), lic.division))
    assert v["issuing_authority"].startswith("省级煤矿安全监察机构")
    assert [e.NAME for e in lic.pending_events] == [
        "licence.applied/1",
        "licence.accepted/1",
        "licence.issued/1",
    ]


@pytest.mark.parametrize(("decided", "late"), [(DECISION_END - MS, False), (DECISION_END, True)])
def test_the_45_days_count_from_receipt_not_acceptance(decided, late):
    lic = apply(APPLIED)
    lic.accept(cmd(AcceptLicence), at(APPLIED + timedelta(days=20)))  # does not restart the count
    assert lic.decision_due() == to_ms(DECISION_END) == period_end(to_ms(APPLIED), 45)
    lic.refuse(cmd(RefuseLicence, reasons=["安全设施未经验收"]), at(decided))
    assert lic.view()["decision_late"] is late
    assert lic.view()["refusal_reasons"] == ["安全设施未经验收"]


@pytest.mark.parametrize(
    ("received", "end"),
    [
        (datetime(2026, 11, 29, 0, 0, tzinfo=CHINA), DECISION_END),
        (datetime(2026, 11, 29, 23, 30, tzinfo=CHINA), DECISION_END),  # 15:30 UTC, still 11-29
        (datetime(2026, 11, 30, 0, 30, tzinfo=CHINA), datetime(2027, 1, 15, tzinfo=CHINA)),
    ],
    ids=str,
)
def test_the_decision_period_counts_china_days(received, end):
    lic = apply(received)
    assert lic.view()["decision_due"] == iso(to_ms(end))
    lic.accept(cmd(AcceptLicence), at(received))
    lic.issue(cmd(IssueLicence, **ISSUE), at(end - MS))
    assert lic.view()["decision_late"] is False


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (VALID_FROM, VALID_UNTIL),
        (datetime(2028, 2, 29, tzinfo=CHINA), datetime(2031, 2, 28, tzinfo=CHINA)),
        (datetime(2027, 2, 28, tzinfo=CHINA), datetime(2030, 2, 28, tzinfo=CHINA)),
        (datetime(2026, 12, 31, 9, 30, tzinfo=UTC), datetime(2029, 12, 31, 9, 30, tzinfo=UTC)),
    ],
)
def test_validity_is_three_calendar_years(valid_from, valid_until):
    lic = issued(valid_from)
    assert lic.valid_from == to_ms(valid_from) and lic.valid_until == to_ms(valid_until)


def test_renewal_is_due_on_the_last_day_of_a_shorter_month():
    until = to_ms(datetime(2029, 5, 31, 12, tzinfo=CHINA))
    assert add_months(until, -3) == to_ms(datetime(2029, 2, 28, 12, tzinfo=CHINA))


@pytest.mark.parametrize(
    ("number", "parsed"),
    [
        ("(苏)WH安许证字[2023]000123", ("苏", "WH", 2023, "000123")),
        ("(鄂)WH安许证字[2025]002345号", ("鄂", "WH", 2025, "002345")),
        ("（闽）FM安许证字（2024）E01号", ("闽", "FM", 2024, "E01")),
        ("（粤）ｆｍ安许证字［２０２３］００１２", ("粤", "FM", 2023, "0012")),
    ],
)
def test_bracket_styles_are_unified(number, parsed):
    p = parse_licence_number(number)
    assert p is not None
    assert (p["province_abbr"], p["industry_code"], p["year"], p["serial"]) == parsed
    assert p["normalized"] == f"（{parsed[0]}）{parsed[1]}安许证字〔{parsed[2]}〕{parsed[3]}"


def test_the_application_gives_the_new_id():
    given = uuid.UUID("0b6f5d0e-3f0c-4e53-9c1a-6a8e2f4b7d21")
    here = dataclasses.replace(pctx(), new_id=lambda: given)
    lic = Licence.apply_for(ApplyLicence.model_validate_json(js(application())), here)
    assert lic.id == given and lic.pending_events[0].originator_id == given


@pytest.mark.parametrize(
    "valid_from",
    ["2100-06-01T00:00:00+08:00", "1969-12-31T00:00:00Z", "2026-05-01T00:00:00"],
)
def test_times_outside_the_plausible_years_or_without_offset_are_refused(valid_from):
    with pytest.raises(ValidationError, match=r"valid_from"):
        cmd(IssueLicence, number=NUMBER, valid_from=valid_from)
    with pytest.raises(ValidationError, match=r"valid_from"):
        cmd(CorrectLicence, expected_version=3, valid_from=valid_from, reason="更正")


def test_a_number_that_does_not_parse_is_stored_verbatim():
    odd = "冀煤安许字 2026 第0042号 "
    lic = issued(number=odd)
    assert lic.view()["number"] == odd.strip() and lic.view()["number_parsed"] is None
    assert lic.pending_events[-1].payload()["number"] == odd.strip()


# -- who records licences -----------------------------------------------------------------------


@pytest.mark.parametrize(("tier", "region"), [("county", "130102"), ("city", "130100")])
def test_county_and_city_nodes_record_no_licence(tier, region):
    with pytest.raises(Refused, match=rf"Arts. 3–5.*this is a {tier} node"):
        Licence.apply_for(
            ApplyLicence.model_validate_json(js(application())), pctx(tier=tier, region=region)
        )
    lic = apply()
    lic.accept(cmd(AcceptLicence), pctx())
    body = cmd(IssueLicence, number=NUMBER, valid_from=VALID_FROM.isoformat())
    with pytest.raises(Refused, match=rf"issuing authority's node.*{tier} node"):
        lic.issue(body, pctx(tier=tier, region=region))
    assert lic.status == "accepted" and lic.version == 2


def test_the_national_node_issues_anywhere():
    lic = Licence.apply_for(
        ApplyLicence.model_validate_json(js(application(division="440106"))),
        pctx(tier="national", region="000000"),
    )
    assert lic.division == "440106"


def test_an_enterprise_outside_the_province_is_refused():
    with pytest.raises(Invalid, match=r"outside this node's area"):
        apply(division="140105")


def test_industries_without_a_licence_are_refused_with_the_reason():
    with pytest.raises(ValidationError, match=r"needs no 安全生产许可证.*Art. 2") as e:
        ApplyLicence.model_validate_json(js(application(industry="industry_trade")))
    assert e.value.errors()[0]["loc"] == ("industry",)
    with pytest.raises(ValidationError, match=r"not an industry that needs"):
        ApplyLicence.model_validate_json(js(application(industry="banking")))
    assert apply(industry="civil_explosives").view()["issuing_authority"].endswith("（第五条）")


# -- renewal and extension ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "late"),
    [
        (VALID_FROM + timedelta(days=1), False),  # any time within the validity
        (datetime(2029, 1, 1, tzinfo=CHINA), False),  # 4 months before expiry
        (RENEWAL_DUE, False),  # 3 months before expiry, to the moment
        (RENEWAL_DUE + MS, True),
        (datetime(2029, 3, 1, tzinfo=CHINA), True),  # 2 months before expiry
        (VALID_UNTIL, True),  # the last moment of validity
    ],
    ids=str,
)
def test_a_renewal_is_taken_within_the_validity_and_late_after_three_months_before(moment, late):
    lic = issued()
    lic.apply_renewal(cmd(ApplyRenewal), at(moment))
    v = lic.view()
    assert v["renewal_applied_at"] == iso(to_ms(moment)) and v["renewal_late"] is late
    assert lic.pending_events[-1].payload() == {"late": late}


def test_a_renewal_after_expiry_is_refused_the_enterprise_applies_anew():
    lic = issued()
    with pytest.raises(Refused, match=r"expired at 2029-05-01T00:00:00\+08:00.*重新申请") as e:
        lic.apply_renewal(cmd(ApplyRenewal), at(VALID_UNTIL + MS))
    assert "licence.apply" in str(e.value) and "Art. 9" in str(e.value)
    assert lic.renewal_applied_at is None and lic.version == 3


def test_a_renewal_recorded_before_the_late_flag_gets_it_from_its_time():
    for moment, late in ((RENEWAL_DUE, False), (RENEWAL_DUE + MS, True)):
        lic = issued()
        lic.apply_renewal(cmd(ApplyRenewal), at(moment))
        *history, applied = lic.collect_events()
        old = dataclasses.replace(applied, late=None)  # as stored before renewal was a deadline
        replayed = Licence.replay([*history, old])
        assert replayed is not None and replayed.view()["renewal_late"] is late


def renewed(moment=RENEWAL_DUE):
    lic = issued()
    lic.apply_renewal(cmd(ApplyRenewal), at(moment))
    return lic


def fatal(when, deaths=1, missing=0, id="acc-1"):
    return {"id": id, "occurred_at": to_ms(when), "deaths": deaths, "missing": missing}


def test_extension_needs_a_renewal_application():
    lic = issued()
    with pytest.raises(Refused, match=r"no renewal application"):
        lic.extend(cmd(ExtendLicence), at(RENEWAL_DUE), [])
    lic.apply_renewal(cmd(ApplyRenewal), at(RENEWAL_DUE))
    with pytest.raises(Refused, match=r"already applied for"):
        lic.apply_renewal(cmd(ApplyRenewal), at(RENEWAL_DUE))


def test_an_extension_adds_three_years_and_a_new_renewal_window():
    lic = renewed()
    lic.extend(cmd(ExtendLicence, note="未发生死亡事故"), at(RENEWAL_DUE + timedelta(days=10)), [])
    v = lic.view()
    assert v["valid_from"] == iso(to_ms(VALID_UNTIL))
    assert v["valid_until"] == iso(to_ms(datetime(2032, 5, 1, tzinfo=CHINA)))
    assert v["renewal_due"] == iso(to_ms(datetime(2032, 2, 1, tzinfo=CHINA)))
    assert v["renewal_applied_at"] is None and v["renewal_late"] is None
    assert len(v["extensions"]) == 1 and v["extensions"][0]["renewal_late"] is False
    with pytest.raises(Refused, match=r"no longer be corrected"):
        lic.correct(
            correction(lic, valid_from=VALID_FROM.isoformat(), reason="签发日期录错"),
            at(RENEWAL_DUE + timedelta(days=11)),
        )
    assert lic.view()["valid_until"] == iso(to_ms(datetime(2032, 5, 1, tzinfo=CHINA)))
    with pytest.raises(Refused, match=r"no renewal application"):
        lic.extend(cmd(ExtendLicence), at(RENEWAL_DUE), [])


@pytest.mark.parametrize(
    "occurred", [VALID_FROM, VALID_FROM + timedelta(days=400), VALID_UNTIL], ids=str
)
def test_a_fatal_accident_within_validity_bars_the_extension(occurred):
    lic = renewed()
    accidents = [fatal(occurred, id="a-fatal"), fatal(occurred, deaths=0, id="a-harmless")]
    with pytest.raises(Refused, match=r"accident a-fatal at .*1 dead.*Art. 9") as e:
        lic.extend(cmd(ExtendLicence), at(RENEWAL_DUE), accidents)
    assert "a-harmless" not in str(e.value)
    assert lic.valid_until == to_ms(VALID_UNTIL)


def test_missing_persons_count_as_a_fatal_accident():
    lic = renewed()
    with pytest.raises(Refused, match=r"0 dead, 2 missing"):
        lic.extend(cmd(ExtendLicence), at(RENEWAL_DUE), [fatal(VALID_FROM, 0, 2)])


@pytest.mark.parametrize("occurred", [VALID_FROM - MS, VALID_UNTIL + MS], ids=str)
def test_a_fatal_accident_outside_validity_does_not_count(occurred):
    lic = renewed()
    lic.extend(
        cmd(ExtendLicence),
        at(RENEWAL_DUE),
        [fatal(occurred, deaths=3), fatal(VALID_FROM, deaths=0)],
    )
    assert lic.valid_until == to_ms(datetime(2032, 5, 1, tzinfo=CHINA))


def test_a_voided_accident_does_not_count():
    lic = renewed()
    lic.extend(cmd(ExtendLicence), at(RENEWAL_DUE), [{**fatal(VALID_FROM), "voided": True}])
    assert len(lic.extensions) == 1


# -- suspension, revocation, cancellation, expiry -----------------------------------------------


def test_suspend_and_reinstate():
    lic = issued()
    lic.suspend(cmd(SuspendLicence, reason="不再具备安全生产条件"), pctx())
    assert lic.view()["status"] == "suspended"
    assert lic.view()["suspension"]["reason"] == "不再具备安全生产条件"
    with pytest.raises(Refused, match=r"it is suspended"):
        lic.suspend(cmd(SuspendLicence, reason="again"), pctx())
    with pytest.raises(Refused, match=r"it is suspended"):
        lic.apply_renewal(cmd(ApplyRenewal), at(RENEWAL_DUE))
    lic.reinstate(cmd(ReinstateLicence, reason="整改合格"), pctx())
    assert lic.view()["status"] == "issued" and lic.view()["suspension"] is None
    assert lic.view()["past_suspensions"][0]["reason"] == "不再具备安全生产条件"
    with pytest.raises(Refused, match=r"only a suspended"):
        lic.reinstate(cmd(ReinstateLicence, reason="again"), pctx())


def test_an_expired_licence_is_not_suspended_or_reinstated():
    lic = issued()
    with pytest.raises(Refused, match=r"expired at 2029-05-01T00:00:00\+08:00"):
        lic.suspend(cmd(SuspendLicence, reason="过期后暂扣"), at(VALID_UNTIL + MS))
    lic.suspend(cmd(SuspendLicence, reason="到期当日暂扣"), at(VALID_UNTIL))
    with pytest.raises(Refused, match=r"expired at"):
        lic.reinstate(cmd(ReinstateLicence, reason="整改合格"), at(VALID_UNTIL + MS))


def test_expiry_is_recorded_only_after_the_validity():
    lic = issued()
    with pytest.raises(Refused, match=r"valid until 2029-05-01T00:00:00\+08:00"):
        lic.expire(cmd(ExpireLicence), at(VALID_UNTIL))
    lic.expire(cmd(ExpireLicence), at(VALID_UNTIL + MS))
    assert lic.view()["status"] == "expired"
    for action in (
        lambda: lic.suspend(cmd(SuspendLicence, reason="暂扣"), at(VALID_UNTIL)),
        lambda: lic.apply_renewal(cmd(ApplyRenewal), at(VALID_UNTIL)),
        lambda: lic.extend(cmd(ExtendLicence), at(VALID_UNTIL), []),
        lambda: lic.revoke(cmd(RevokeLicence, reason="吊销"), pctx()),
        lambda: lic.cancel(cmd(CancelLicence, reason="注销"), pctx()),
        lambda: lic.expire(cmd(ExpireLicence), at(VALID_UNTIL + MS)),
    ):
        with pytest.raises(Refused, match=r"it is expired"):
            action()


def test_a_suspended_licence_may_be_revoked_and_that_is_final():
    lic = issued()
    lic.suspend(cmd(SuspendLicence, reason="暂扣"), pctx())
    lic.revoke(cmd(RevokeLicence, reason="整改不合格, 吊销"), pctx())
    assert lic.view()["status"] == "revoked" and lic.view()["ended"]["reason"] == "整改不合格, 吊销"
    with pytest.raises(Refused, match=r"it is revoked"):
        lic.reinstate(cmd(ReinstateLicence, reason="整改合格"), pctx())
    with pytest.raises(Refused, match=r"it is revoked"):
        lic.cancel(cmd(CancelLicence, reason="注销"), pctx())


def test_a_cancelled_licence_is_final():
    lic = issued()
    lic.cancel(cmd(CancelLicence, reason="企业申请注销"), pctx())
    assert lic.view()["status"] == "cancelled"
    with pytest.raises(Refused, match=r"it is cancelled"):
        lic.suspend(cmd(SuspendLicence, reason="暂扣"), pctx())
    with pytest.raises(Refused, match=r"it is cancelled"):
        lic.revoke(cmd(RevokeLicence, reason="吊销"), pctx())


ISSUE = {"number": NUMBER, "valid_from": VALID_FROM.isoformat()}


@pytest.mark.parametrize(
    ("method", "model", "fields", "message"),
    [
        ("issue", IssueLicence, ISSUE, "cannot issue .* it is applied.*accepted"),
        ("refuse", RefuseLicence, {"reasons": ["不符合"]}, "cannot refuse .* it is applied"),
        ("suspend", SuspendLicence, {"reason": "暂扣"}, "cannot suspend .* it is applied"),
        ("reinstate", ReinstateLicence, {"reason": "恢复"}, "only a suspended"),
        ("revoke", RevokeLicence, {"reason": "吊销"}, "only an issued licence is revoked"),
        ("cancel", CancelLicence, {"reason": "注销"}, "only an issued licence is cancelled"),
        ("expire", ExpireLicence, {}, "cannot record the expiry"),
        ("apply_renewal", ApplyRenewal, {}, "only a valid licence is renewed"),
        ("extend", ExtendLicence, {}, "only a valid licence is extended"),
    ],
)
def test_an_application_allows_only_acceptance(method, model, fields, message):
    lic = apply()
    args = [cmd(model, **fields), pctx()] + ([[]] if method == "extend" else [])
    with pytest.raises(Refused, match=message):
        getattr(lic, method)(*args)
    assert lic.version == 1


def test_decided_applications_take_no_second_decision():
    lic = issued()
    with pytest.raises(Refused, match=r"cannot accept .* it is issued"):
        lic.accept(cmd(AcceptLicence), pctx())
    with pytest.raises(Refused, match=r"cannot issue licence （冀）MK.* it is issued"):
        lic.issue(cmd(IssueLicence, **ISSUE), pctx())
    refused = apply()
    refused.accept(cmd(AcceptLicence), pctx())
    refused.refuse(cmd(RefuseLicence, reasons=["主要负责人未经考核"]), pctx())
    with pytest.raises(Refused, match=r"it is refused"):
        refused.issue(cmd(IssueLicence, **ISSUE), pctx())
    with pytest.raises(ValidationError, match=r"at least 1 item"):
        cmd(RefuseLicence, reasons=[])


# -- corrections, voids, replay -----------------------------------------------------------------


def test_corrections_re_derive_what_depends_on_them():
    lic = issued()
    new_from = datetime(2026, 6, 1, tzinfo=CHINA)
    lic.correct(
        cmd(
            CorrectLicence,
            expected_version=lic.version,
            number="(冀)MK安许证字[2026]0043",
            valid_from=new_from.isoformat(),
            reason="录入错误",
        ),
        pctx(),
    )
    changes = lic.pending_events[-1].payload()["changes"]
    assert changes["number_parsed"]["serial"] == "0043"
    assert changes["valid_until"] == to_ms(datetime(2029, 6, 1, tzinfo=CHINA))
    assert lic.view()["renewal_due"] == iso(to_ms(datetime(2029, 3, 1, tzinfo=CHINA)))
    lic.correct(correction(lic, enterprise_credit_code=credit_code(2), reason="代码错"), pctx())
    assert lic.enterprise_id == str(enterprise_id(credit_code(2), lic.division))
    with pytest.raises(Invalid, match=r"changes nothing"):
        lic.correct(correction(lic, scope="煤炭开采 (一号井)", reason="same"), pctx())
    with pytest.raises(Invalid, match=r"outside this node's area"):
        lic.correct(correction(lic, division="140105", reason="搬迁"), pctx())
    with pytest.raises(ValidationError, match=r"no field"):
        cmd(CorrectLicence, expected_version=1, reason="nothing")
    new = apply()
    with pytest.raises(Invalid, match=r"no number to correct yet"):
        new.correct(correction(new, number=NUMBER, reason="提前"), pctx())


def test_a_correction_names_the_version_it_revises():
    with pytest.raises(ValidationError, match=r"expected_version"):
        cmd(CorrectLicence, scope="新范围", reason="更正")
    with pytest.raises(ValidationError, match=r"expected_version"):
        cmd(CorrectLicence, expected_version=0, scope="新范围", reason="更正")


def test_a_voided_licence_refuses_everything():
    lic = issued()
    with pytest.raises(Refused, match=r"county node"):
        lic.void(cmd(VoidCommand, reason="重复录入"), ctx())
    lic.void(cmd(VoidCommand, reason="重复录入"), pctx())
    assert lic.pending_events[-1].NAME == "licence.voided/1"
    with pytest.raises(Refused, match=r"voided"):
        lic.suspend(cmd(SuspendLicence, reason="暂扣"), pctx())
    with pytest.raises(Refused, match=r"voided"):
        lic.correct(correction(lic, scope="新范围", reason="更正"), pctx())
    with pytest.raises(Refused, match=r"voided"):
        lic.void(cmd(VoidCommand, reason="again"), pctx())


def test_replay_gives_the_same_state():
    lic = renewed()
    lic.extend(cmd(ExtendLicence), at(RENEWAL_DUE), [])
    lic.suspend(cmd(SuspendLicence, reason="暂扣"), at(RENEWAL_DUE))
    lic.reinstate(cmd(ReinstateLicence, reason="整改合格"), at(RENEWAL_DUE + timedelta(days=9)))
    lic.correct(correction(lic, enterprise_name="新名称", reason="更名"), pctx())
    events = lic.collect_events()
    again = Licence.replay(events)
    assert again is not None and again.view() == lic.view()
    assert {e.NAME for e in events} >= {"licence.extended/1", "licence.corrected/1"}
