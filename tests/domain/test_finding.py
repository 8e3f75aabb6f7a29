"""Findings of 漏报, 谎报 and 瞒报: recorded by a bureau whose area holds the accident, as its own
record referring to the accident; a finding against a bureau only by a tier above that bureau."""

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError

from domain.base import Aggregate, VoidCommand, to_ms
from domain.errors import Invalid, Refused
from domain.finding import Finding, FindingRecorded, RecordFinding
from tests.factories import NOW, ctx, js

ACCIDENT = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
OCCURRED = to_ms(NOW - timedelta(hours=2))
BASIS = "经查证: 事故发生单位隐瞒 2 人死亡, 超过 1 小时未报告"


def fact(division="130102", voided=False):
    """The accident as the application passes it (node.service, need "accident")."""
    return {
        "id": ACCIDENT,
        "grade": "general",
        "voided": voided,
        "occurred_at": OCCURRED,
        "division": division,
    }


def command(**over):
    body = {"accident_id": ACCIDENT, "finding": "concealed", "basis": BASIS, **over}
    return RecordFinding.model_validate_json(js(body))


def record(node=None, accident=None, **over):
    return Finding.record(command(**over), node or ctx(), accident or fact())


def test_the_county_records_a_finding_on_the_units_report():
    agg = record()
    (event,) = agg.collect_events()
    assert type(event) is FindingRecorded and event.NAME == "accident.finding_recorded/1"
    assert event.payload() == {
        "accident_id": ACCIDENT,
        "finding": "concealed",
        "subject": "unit",
        "bureau": None,
        "basis": BASIS,
        "division": "130102",
        "occurred_at": OCCURRED,
        "tier": "county",
        "region": "130102",
    }
    assert event.actor == {"user": "zhang", "node": "130102"}
    view = Aggregate.replay([event]).view()
    assert (view["kind"], view["origin"], view["finding_label"], view["article"]) == (
        "finding",
        "130102",
        "瞒报",
        "493号令 Art. 36(1)",
    )
    assert record(finding="omitted").view()["article"] == "493号令 Art. 35(2)"
    assert record(finding="falsified").view()["finding_label"] == "谎报"


@pytest.mark.parametrize(
    ("node", "bureau"),
    [
        (ctx(region="130100", tier="city"), "130102"),  # the city finds its county's report
        (ctx(region="130000", tier="province"), "130100"),
        (ctx(region="000000", tier="national"), "130000"),
    ],
)
def test_a_tier_above_finds_against_a_bureau_below_it(node, bureau):
    view = record(node, subject="bureau", bureau=bureau, finding="omitted").view()
    assert (view["subject"], view["bureau"], view["origin"], view["article"]) == (
        "bureau",
        bureau,
        node.region,
        "493号令 Art. 39(2)",
    )


@pytest.mark.parametrize(
    ("node", "accident", "over", "reason"),
    [
        (ctx(region="000000", tier="backup"), fact(), {}, "backup node"),
        (ctx(region="130104"), fact(), {}, "outside this node's area"),
        (ctx(region="130400", tier="city"), fact(), {}, "outside this node's area"),
        (ctx(), fact(voided=True), {}, "voided"),
        # a bureau does not find against its own report, nor against a tier above it
        (ctx(), fact(), {"subject": "bureau", "bureau": "130102"}, "a tier above it"),
        (
            ctx(region="130100", tier="city"),
            fact(),
            {"subject": "bureau", "bureau": "130000"},
            "a tier above it",
        ),
        # nor against a bureau the report never passed through
        (
            ctx(region="130000", tier="province"),
            fact(),
            {"subject": "bureau", "bureau": "130400"},
            "not on the reporting chain",
        ),
    ],
)
def test_who_may_not_record_a_finding(node, accident, over, reason):
    with pytest.raises(Refused, match=reason):
        record(node, accident, **over)


def test_a_jiyuan_finding_against_its_bureau_is_the_provinces():
    """济源 (419001) has no city: the province is the tier above the county-level bureau."""
    view = record(
        ctx(region="410000", tier="province"),
        fact(division="419001"),
        subject="bureau",
        bureau="419001",
    ).view()
    assert view["bureau"] == "419001"
    with pytest.raises(Refused, match="not on the reporting chain"):
        record(
            ctx(region="410000", tier="province"),
            fact(division="419001"),
            subject="bureau",
            bureau="410100",  # 郑州: a city of the province, not above 济源
        )


def test_the_input_is_checked():
    with pytest.raises(ValidationError, match="exactly when subject is 'bureau'"):
        command(subject="bureau")
    with pytest.raises(ValidationError, match="exactly when subject is 'bureau'"):
        command(bureau="130100")
    with pytest.raises(ValidationError, match="finding"):
        command(finding="late")  # 迟报 is derived from the times, not found
    with pytest.raises(ValidationError, match="basis"):
        command(basis="")
    with pytest.raises(Invalid, match="not the accident given"):
        Finding.record(command(accident_id=str(uuid.uuid4())), ctx(), fact())


def test_a_finding_recorded_in_error_is_voided():
    agg = record()
    agg.void(VoidCommand.model_validate_json(js({"reason": "认定有误, 撤销"})), ctx())
    assert agg.voided is not None and agg.pending_events[-1].NAME == "accident.finding_voided/1"
    with pytest.raises(Refused, match="voided"):
        agg.void(VoidCommand.model_validate_json(js({"reason": "again"})), ctx())
