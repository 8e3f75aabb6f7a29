"""Accidents (生产安全事故) and 较大涉险 near misses, as the bureau where they happened records
them: report, supplements (补报), corrections and voids, with the grade re-derived each time."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import Field

from domain.base import (
    Aggregate,
    Command,
    Context,
    Correction,
    Event,
    Revision,
    VoidCommand,
    Voided,
    changes,
    iso,
    last_day,
    not_in_future,
    period_end,
)
from domain.codes import division_level, enterprise_id, in_subtree, region_chain
from domain.errors import FieldError, Invalid, Refused
from domain.fields import Count, CreditCode, Moment, Name, PlaceCode, Text, Yuan
from domain.grading import (
    NEAR_MISS_ENDANGERED,
    NEAR_MISS_EVACUATED,
    NEAR_MISS_TRAPPED,
    UNIT_REPORT_DEADLINE_MS,
    Grade,
    grade_accident,
    investigated_by,
    must_reach,
    supplement_window_days,
)
from domain.i18n import _
from domain.industries import AccidentIndustry
from domain.receipt import expected_receipts, origin_tier

CASUALTY_FIELDS = ("deaths", "missing", "serious_injuries")
NEAR_MISS_FIELDS = ("endangered", "trapped", "evacuated")

# -- commands ---------------------------------------------------------------------------------


class _Occurrence(Command):
    enterprise_credit_code: CreditCode
    enterprise_name: Name
    occurred_at: Moment = Field(description="When it happened (ISO 8601 with offset).")
    place: Text
    division: PlaceCode = Field(description="Where it happened (GB/T 2260).")
    industry: AccidentIndustry
    summary: Text = Field(description="简要经过: what happened.")
    measures_taken: Text = Field(description="已经采取的措施.")
    reported_at: Moment = Field(description="When the unit reported it to the bureau.")


class ReportAccident(_Occurrence):
    deaths: Count = Field(description="死亡人数")
    missing: Count = Field(description="下落不明人数 (counted with deaths for the grade)")
    serious_injuries: Count = Field(description="重伤人数, acute industrial poisoning included")
    direct_loss_yuan: Yuan = Field(description="初步估计的直接经济损失, integer yuan")


class ReportNearMiss(_Occurrence):
    endangered: Count = Field(default=0, description="涉险人数")
    trapped: Count = Field(default=0, description="被困人数")
    evacuated: Count = Field(default=0, description="紧急疏散人数")
    environmental_pollution: bool = Field(default=False, description="造成严重环境污染")
    facility_threat: bool = Field(default=False, description="危及重要场所和设施安全")
    other_circumstance: Text | None = Field(default=None, description="其他较大涉险情形")


class _NewFigures(Command):
    """Fields both a supplement and a correction may carry: new totals, not differences."""

    deaths: Count | None = None
    missing: Count | None = None
    serious_injuries: Count | None = None
    direct_loss_yuan: Yuan | None = None
    endangered: Count | None = None
    trapped: Count | None = None
    evacuated: Count | None = None
    summary: Text | None = None
    measures_taken: Text | None = None


class SupplementAccident(_NewFigures, Revision):
    """补报: new totals for whatever changed since the report."""

    note: Text | None = Field(default=None, description="What developed since the last report.")


class CorrectAccident(_NewFigures, Correction):
    """A record made wrongly is corrected, with the reason; every field may be corrected."""

    enterprise_credit_code: CreditCode | None = None
    enterprise_name: Name | None = None
    occurred_at: Moment | None = None
    place: Text | None = None
    division: PlaceCode | None = None
    industry: AccidentIndustry | None = None
    reported_at: Moment | None = None


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Facts(Event):
    """Fields of the first report, common to accidents and near misses."""

    enterprise_id: str
    enterprise_credit_code: str
    enterprise_name: str
    occurred_at: int
    place: str
    division: str
    industry: str
    summary: str
    measures_taken: str
    reported_at: int
    grade: str

    def apply(self, agg: Accident) -> None:
        agg.facts.update(self.payload())
        agg.facts.pop("grade")
        agg.grade = Grade.from_code(self.grade)


@dataclass(frozen=True, kw_only=True)
class Reported(_Facts):
    NAME = "accident.reported/1"
    deaths: int
    missing: int
    serious_injuries: int
    direct_loss_yuan: int


@dataclass(frozen=True, kw_only=True)
class NearMissReported(_Facts):
    NAME = "accident.near_miss_reported/1"
    endangered: int
    trapped: int
    evacuated: int
    environmental_pollution: bool
    facility_threat: bool
    other_circumstance: str | None

    def apply(self, agg: Accident) -> None:
        super().apply(agg)
        agg.near_miss = True


@dataclass(frozen=True, kw_only=True)
class _Changed(Event):
    changes: dict[str, Any]
    grade: str

    def apply(self, agg: Accident) -> None:
        agg.facts.update(self.changes)
        agg.grade = Grade.from_code(self.grade)


@dataclass(frozen=True, kw_only=True)
class Supplemented(_Changed):
    NAME = "accident.supplemented/1"
    note: str | None

    def apply(self, agg: Accident) -> None:
        super().apply(agg)
        agg.supplements += 1


@dataclass(frozen=True, kw_only=True)
class Corrected(_Changed):
    NAME = "accident.corrected/1"
    reason: str


@dataclass(frozen=True, kw_only=True)
class AccidentVoided(Voided):
    NAME = "accident.voided/1"


# -- aggregate --------------------------------------------------------------------------------


class Accident(Aggregate):
    KIND = "accident"

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.facts: dict[str, Any] = {}
        self.grade = Grade.GENERAL
        self.near_miss = False
        self.supplements = 0

    # -- commands ---------------------------------------------------------------------------
    @classmethod
    def report(cls, cmd: ReportAccident, ctx: Context) -> Accident:
        facts = _first_facts(cmd, ctx)
        facts.update(
            deaths=cmd.deaths,
            missing=cmd.missing,
            serious_injuries=cmd.serious_injuries,
            direct_loss_yuan=cmd.direct_loss_yuan,
        )
        grade = grade_accident(
            cmd.deaths, cmd.missing, cmd.serious_injuries, cmd.direct_loss_yuan
        ).grade
        return cls.start(ctx.new_id(), Reported, ctx, grade=grade.code, **facts)

    @classmethod
    def report_near_miss(cls, cmd: ReportNearMiss, ctx: Context) -> Accident:
        facts = _first_facts(cmd, ctx)
        facts.update(
            endangered=cmd.endangered,
            trapped=cmd.trapped,
            evacuated=cmd.evacuated,
            environmental_pollution=cmd.environmental_pollution,
            facility_threat=cmd.facility_threat,
            other_circumstance=cmd.other_circumstance,
        )
        _check_near_miss_criteria(facts)
        return cls.start(ctx.new_id(), NearMissReported, ctx, grade=Grade.NEAR_MISS.code, **facts)

    def supplement(self, cmd: SupplementAccident, ctx: Context) -> None:
        self.ensure_live()
        figures = NEAR_MISS_FIELDS if self.near_miss else (*CASUALTY_FIELDS, "direct_loss_yuan")
        fields: tuple[str, ...] = ("summary", "measures_taken", *figures)
        self._refuse_foreign_fields(cmd, fields)
        changes = self._changes(cmd, fields)
        if not changes:
            raise Invalid.field(
                "*", _("the supplement changes nothing: give the new totals of what changed")
            )
        self._check_casualty_window(changes, ctx)
        self._trigger(
            Supplemented, ctx, changes=changes, grade=self._regrade(changes).code, note=cmd.note
        )

    def correct(self, cmd: CorrectAccident, ctx: Context) -> None:
        self.ensure_live()
        allowed = tuple(
            f
            for f in CorrectAccident.model_fields
            if f not in ("reason", "expected_version")
            and f
            not in ((*CASUALTY_FIELDS, "direct_loss_yuan") if self.near_miss else NEAR_MISS_FIELDS)
        )
        self._refuse_foreign_fields(cmd, allowed)
        changes = self._changes(cmd, allowed, ctx)
        if not changes:
            raise Invalid.field(
                "*", _("the correction changes nothing: every value given equals the record")
            )
        self._check_casualty_window(changes, ctx)
        merged = {**self.facts, **changes}
        if "division" in changes:
            _check_area(changes["division"], ctx)
        if merged["reported_at"] < merged["occurred_at"]:
            raise Invalid.field("reported_at", _("the report cannot be earlier than the accident"))
        if self.near_miss:
            _check_near_miss_criteria(merged)
        if "enterprise_credit_code" in changes or "division" in changes:
            changes["enterprise_id"] = str(
                enterprise_id(merged["enterprise_credit_code"], merged["division"])
            )
        self._trigger(
            Corrected, ctx, changes=changes, grade=self._regrade(changes).code, reason=cmd.reason
        )

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self.ensure_live()
        self._trigger(AccidentVoided, ctx, reason=cmd.reason)

    # -- helpers ----------------------------------------------------------------------------
    def supplement_window_end(self) -> int:
        days = supplement_window_days(self.facts["industry"])
        return period_end(self.facts["occurred_at"], days)

    def _check_casualty_window(self, changes: dict[str, Any], ctx: Context) -> None:
        """493号令 Art. 13: casualty changes count within 30 days of the accident (7 for road
        traffic and fire); after that the figures are final, by supplement or by correction."""
        casualties = sorted(set(changes) & set(CASUALTY_FIELDS))
        end = self.supplement_window_end()
        if casualties and ctx.now_ms >= end:
            days = supplement_window_days(self.facts["industry"])
            raise Refused(
                _(
                    "casualty changes ({fields}) are accepted within {days} days of the "
                    "accident, that is before {end} (24:00 China time of the last day); it is "
                    "now {now} (493号令 Art. 13). Record the figures in the investigation",
                    fields=", ".join(casualties),
                    days=days,
                    end=iso(end),
                    now=iso(ctx.now_ms),
                )
            )

    def _refuse_foreign_fields(self, cmd: Command, allowed: tuple[str, ...]) -> None:
        given = cmd.model_dump(exclude_none=True, exclude={"reason", "expected_version", "note"})
        foreign = [f for f in given if f not in allowed]
        if foreign:
            what = (
                _(
                    "a 较大涉险 report has no casualties or loss; if people died or were hurt, "
                    "report the accident"
                )
                if self.near_miss
                else _("an accident report has no near-miss figures")
            )
            raise Invalid([FieldError(f, what) for f in foreign])

    def _changes(
        self, cmd: Command, fields: tuple[str, ...], ctx: Context | None = None
    ) -> dict[str, Any]:
        proposed: dict[str, Any] = {}
        for field in fields:
            value = getattr(cmd, field)
            if value is not None and field in ("occurred_at", "reported_at"):
                assert ctx is not None
                value = not_in_future(ctx, field, value)
            proposed[field] = value.value if isinstance(value, Enum) else value
        return changes(self.facts, proposed)

    def _regrade(self, changes: dict[str, Any]) -> Grade:
        if self.near_miss:
            return Grade.NEAR_MISS
        f = {**self.facts, **changes}
        return grade_accident(
            f["deaths"], f["missing"], f["serious_injuries"], f["direct_loss_yuan"]
        ).grade

    # -- reading ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        f = self.facts
        deadline = f["occurred_at"] + UNIT_REPORT_DEADLINE_MS
        window_end = self.supplement_window_end()
        grading = None
        if not self.near_miss:
            g = grade_accident(
                f["deaths"], f["missing"], f["serious_injuries"], f["direct_loss_yuan"]
            )
            grading = list(g.criteria)
        times = {k: iso(f[k]) for k in ("occurred_at", "reported_at")}
        reach = must_reach(self.grade, f["division"])  # Art. 10, along the division's chain
        reach_tier = origin_tier(reach)
        investigating = investigated_by(self.grade, f["division"])  # Art. 19, Art. 20 ¶1 above
        return {
            "near_miss": self.near_miss,
            **{k: v for k, v in f.items() if k not in times},
            **times,
            "region": region_chain(f["division"]),
            "grade": self.grade.code,
            "grade_label": self.grade.label,
            "grade_criteria": grading,
            "unit_report": {
                "deadline": iso(deadline),
                "late": f["reported_at"] > deadline,
                "minutes_late": max(
                    0, -((deadline - f["reported_at"]) // 60_000)
                ),  # started minutes
            },
            "must_reach_tier": reach_tier.value if reach_tier else None,
            "must_reach_region": reach,
            "receipts_expected_from": expected_receipts(self.origin, f["division"], self.grade),
            "investigated_by_tier": division_level(investigating).value,
            "investigated_by_region": investigating,
            "supplement_window_until": iso(window_end),
            "supplement_window_last_day": last_day(window_end),
            "supplements": self.supplements,
        }


Reported.CREATES = Accident
NearMissReported.CREATES = Accident


def _check_area(division: str, ctx: Context) -> None:
    if not in_subtree(ctx.region, division):
        raise Invalid.field(
            "division",
            _(
                "{division} is outside this node's area ({region}): an accident is reported "
                "to the bureau of the place where it happened",
                division=division,
                region=ctx.region,
            ),
        )


def _first_facts(cmd: _Occurrence, ctx: Context) -> dict[str, Any]:
    _check_area(cmd.division, ctx)
    occurred = not_in_future(ctx, "occurred_at", cmd.occurred_at)
    reported = not_in_future(ctx, "reported_at", cmd.reported_at)
    if reported < occurred:
        raise Invalid.field(
            "reported_at",
            _(
                "{reported} is earlier than occurred_at {occurred}",
                reported=iso(reported),
                occurred=iso(occurred),
            ),
        )
    return {
        "enterprise_id": str(enterprise_id(cmd.enterprise_credit_code, cmd.division)),
        "enterprise_credit_code": cmd.enterprise_credit_code,
        "enterprise_name": cmd.enterprise_name,
        "occurred_at": occurred,
        "place": cmd.place,
        "division": cmd.division,
        "industry": cmd.industry.value,
        "summary": cmd.summary,
        "measures_taken": cmd.measures_taken,
        "reported_at": reported,
    }


def _check_near_miss_criteria(f: dict[str, Any]) -> None:
    if (
        f["endangered"] >= NEAR_MISS_ENDANGERED
        or f["trapped"] >= NEAR_MISS_TRAPPED
        or f["evacuated"] >= NEAR_MISS_EVACUATED
        or f["environmental_pollution"]
        or f["facility_threat"]
        or f["other_circumstance"]
    ):
        return
    raise Invalid.field(
        "*",
        _(
            "meets no 较大涉险 criterion: needs endangered ≥ 10, trapped ≥ 3, evacuated ≥ 500, "
            "environmental_pollution, facility_threat, or other_circumstance (总局令21号 Art. 26)"
        ),
    )
