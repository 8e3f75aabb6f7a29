"""Accident investigations (事故调查) of 《生产安全事故报告和调查处理条例》 (国务院令第493号):
opened by the bureau of the tier the grade assigns at the place (Art. 19, ``investigated_by``)
or, with a reason, by one above it over the place (Art. 20 para 1: 上级人民政府认为必要时，可以
调查由下级人民政府负责调查的事故); the report due within 60 days of the accident
and extendable to at most 120 (Art. 29), the government's reply (批复) due within 15 days of
receiving the report, 30 for 特别重大, which alone may be extended to at most 60 (Art. 32), then
closed. Days are counted as the law counts them (domain.base.period_end: the start day is not
counted, the last ends at 24:00 China time); a deadline is met by a time before it.

The application passes the accident as it stands at this node; the investigation keeps the
grade and time of occurrence it was opened with. Late flags compare recorded times with the
deadlines, never the clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field

from domain.base import (
    Aggregate,
    Command,
    Context,
    Corrected,
    Correction,
    Event,
    Reason,
    UpdateCommand,
    VoidCommand,
    Voided,
    changes,
    iso,
    last_day,
    not_in_future,
    period_end,
    to_ms,
)
from domain.codes import division_level, in_subtree, tier_label, tier_rank
from domain.errors import Invalid, Refused
from domain.fields import Moment, Name, Text
from domain.grading import Grade, investigated_by
from domain.i18n import Text as Message
from domain.i18n import _

# uuid5 namespace for investigation ids: one investigation per accident and region, so that
# after a regrade moves an accident to another tier two nodes never create the same aggregate.
INVESTIGATION_NAMESPACE = uuid.UUID("3b0e7f52-1c7d-5a94-8e2f-7d41c6a0b5e9")

REPORT_DAYS = 60  # Art. 29: 自事故发生之日起60日内
REPORT_MAX_DAYS = 120  # Art. 29: extended by at most 60 more
REPLY_DAYS = 15  # Art. 32: 自收到事故调查报告之日起15日内
REPLY_DAYS_ESPECIALLY_MAJOR = 30  # Art. 32
REPLY_MAX_DAYS = 60  # Art. 32: especially major only, extended by at most 30 more

Members = list[Name]

# -- commands ---------------------------------------------------------------------------------


class OpenInvestigation(Command):
    accident_id: uuid.UUID = Field(description="The accident investigated (its record's id).")
    leader: Name = Field(description="调查组组长.")
    members: Members = Field(default_factory=list, max_length=100, description="调查组成员.")
    reason: str | None = Field(
        default=None,
        min_length=2,
        max_length=2000,
        description="Why this bureau investigates an accident the grade assigns to a tier below "
        "it (493号令 Art. 20 para 1: 上级人民政府认为必要时): required then, kept with the event.",
    )


class ExtendReport(UpdateCommand):
    """Extend the report deadline (Art. 29), at most to the end of the 120th day after the
    accident's day (24:00 China time)."""

    until: Moment = Field(
        description="The new deadline, an instant the report must come before (ISO 8601 with "
        "offset; the end of a day is 00:00 of the next, e.g. 2026-05-11T00:00:00+08:00)."
    )
    reason: str = Reason


class SubmitReport(UpdateCommand):
    """调查报告 submitted to the government that ordered the investigation."""

    submitted_at: Moment = Field(description="When the report was submitted.")
    summary: Text = Field(description="事故原因, 性质与责任认定: what the report concludes.")


class ExtendReply(UpdateCommand):
    """Extend the reply deadline of a 特别重大 accident by at most 30 days (Art. 32)."""

    until: Moment = Field(
        description="The new deadline, an instant the reply must come before (ISO 8601 with "
        "offset; the end of a day is 00:00 of the next)."
    )
    reason: str = Reason


class RecordReply(UpdateCommand):
    """批复: the government's reply to the report."""

    replied_at: Moment = Field(description="When the government replied.")
    summary: Text = Field(description="What the reply decided.")


class CloseInvestigation(UpdateCommand):
    note: Text | None = None


CORRECTABLE = ("leader", "members", "submitted_at", "report_summary", "replied_at", "reply_summary")


class CorrectInvestigation(Correction):
    """A record made wrongly is corrected, with the reason: the values given replace the
    recorded ones, so the correction names the version it revises."""

    leader: Name | None = None
    members: Members | None = Field(default=None, max_length=100)
    submitted_at: Moment | None = None
    report_summary: Text | None = None
    replied_at: Moment | None = None
    reply_summary: Text | None = None


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Opened(Event):
    NAME = "investigation.opened/1"
    accident_id: str
    grade: str
    occurred_at: int
    division: str
    tier: str  # the tier of the node that opened it
    leader: str
    members: list[str]
    # the tier Art. 19 assigns (absent on records made before Art. 20 para 1: the same as tier)
    assigned_tier: str | None = None
    reason: str | None = None  # why a tier above the assigned one investigates (Art. 20 para 1)

    def apply(self, agg: Investigation) -> None:
        agg.accident_id = self.accident_id
        agg.grade = Grade.from_code(self.grade)
        agg.occurred_at = self.occurred_at
        agg.division = self.division
        agg.tier = self.tier
        agg.assigned_tier = self.assigned_tier or self.tier
        agg.reason = self.reason
        agg.leader = self.leader
        agg.members = list(self.members)


@dataclass(frozen=True, kw_only=True)
class ReportExtended(Event):
    NAME = "investigation.report_extended/1"
    until: int
    reason: str

    def apply(self, agg: Investigation) -> None:
        agg.report_extensions.append(
            {"until": self.until, "reason": self.reason, "at": self.recorded_at}
        )


@dataclass(frozen=True, kw_only=True)
class ReportSubmitted(Event):
    NAME = "investigation.report_submitted/1"
    submitted_at: int
    summary: str

    def apply(self, agg: Investigation) -> None:
        agg.submitted_at = self.submitted_at
        agg.report_summary = self.summary


@dataclass(frozen=True, kw_only=True)
class ReplyExtended(Event):
    NAME = "investigation.reply_extended/1"
    until: int
    reason: str

    def apply(self, agg: Investigation) -> None:
        agg.reply_extensions.append(
            {"until": self.until, "reason": self.reason, "at": self.recorded_at}
        )


@dataclass(frozen=True, kw_only=True)
class Replied(Event):
    NAME = "investigation.replied/1"
    replied_at: int
    summary: str

    def apply(self, agg: Investigation) -> None:
        agg.replied_at = self.replied_at
        agg.reply_summary = self.summary


@dataclass(frozen=True, kw_only=True)
class Closed(Event):
    NAME = "investigation.closed/1"
    note: str | None

    def apply(self, agg: Investigation) -> None:
        agg.closed = {"at": iso(self.recorded_at), "note": self.note}


@dataclass(frozen=True, kw_only=True)
class InvestigationCorrected(Corrected):
    NAME = "investigation.corrected/1"


@dataclass(frozen=True, kw_only=True)
class InvestigationVoided(Voided):
    NAME = "investigation.voided/1"


# -- aggregate --------------------------------------------------------------------------------


class Investigation(Aggregate):
    DERIVED_ID = True
    KIND = "investigation"

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.accident_id = ""
        self.grade = Grade.GENERAL
        self.occurred_at = 0
        self.division = ""
        self.tier = ""
        self.assigned_tier = ""
        self.reason: str | None = None
        self.leader = ""
        self.members: list[str] = []
        self.report_extensions: list[dict[str, Any]] = []
        self.submitted_at: int | None = None
        self.report_summary: str | None = None
        self.reply_extensions: list[dict[str, Any]] = []
        self.replied_at: int | None = None
        self.reply_summary: str | None = None
        self.closed: dict[str, Any] | None = None

    @staticmethod
    def id_for(accident_id: uuid.UUID | str, region: str) -> uuid.UUID:
        """The id of the investigation of ``accident_id`` opened by the node of ``region``."""
        return uuid.uuid5(INVESTIGATION_NAMESPACE, f"{uuid.UUID(str(accident_id))}:{region}")

    # -- commands ---------------------------------------------------------------------------
    @classmethod
    def open(cls, cmd: OpenInvestigation, ctx: Context, accident: dict[str, Any]) -> Investigation:
        """Open the investigation of ``accident`` as it stands at this node: {"id", "grade"
        (a grade code), "occurred_at" (ms), "division", "voided"}. The node's area must hold
        the place (Arts. 19, 21); its tier must be the one the grade assigns there or, with a
        reason, one above it (Art. 20 para 1)."""
        if accident["id"] != str(cmd.accident_id):
            raise Invalid.field(
                "accident_id",
                _(
                    "{id} is not the accident given ({given})",
                    id=str(cmd.accident_id),
                    given=accident["id"],
                ),
            )
        grade = Grade.from_code(accident["grade"])
        which = _("accident {id}", id=accident["id"])
        if grade == Grade.NEAR_MISS:
            raise Refused(
                _(
                    "{which} is a 较大涉险 near miss, not an accident: 493号令 Art. 19 "
                    "investigations are of accidents; if people died or were hurt, report it as "
                    "an accident",
                    which=which,
                )
            )
        if accident["voided"]:
            raise Refused(_("{which} was voided: a voided record is not investigated", which=which))
        division = accident["division"]
        assigned = investigated_by(grade, division)  # the region of the bureau Art. 19 names
        tier = division_level(assigned)
        if not in_subtree(ctx.region, division):
            raise Refused(
                _(
                    "{which} happened in {division}, outside this node's area ({region}): it is "
                    "investigated by the {tier} government of the place where it happened "
                    "({assigned}; 493号令 Art. 19) or one above it (Art. 20)",
                    which=which,
                    division=division,
                    region=ctx.region,
                    tier=tier_label(tier),
                    assigned=assigned,
                )
            )
        here, due = tier_rank(ctx.tier), tier_rank(tier)
        assert due is not None
        if here is None or here < due:
            raise Refused(
                _(
                    "{which} is {grade} ({code}): a {grade} accident in {division} is "
                    "investigated by the {tier} government ({assigned}; 493号令 Art. 19) or one "
                    "above it (Art. 20), and this is a {here} node",
                    which=which,
                    grade=grade.label,
                    code=grade.code,
                    division=division,
                    tier=tier_label(tier),
                    assigned=assigned,
                    here=tier_label(ctx.tier),
                )
            )
        if here > due and cmd.reason is None:
            raise Invalid.field(
                "reason",
                _(
                    "{which} is {grade}: the {tier} government ({assigned}) is responsible for "
                    "investigating it (493号令 Art. 19); a {here} government investigates it "
                    "when it deems it necessary (Art. 20 para 1: 上级人民政府认为必要时): say why",
                    which=which,
                    grade=grade.label,
                    tier=tier_label(tier),
                    assigned=assigned,
                    here=tier_label(ctx.tier),
                ),
            )
        return cls.start(
            cls.id_for(cmd.accident_id, ctx.region),
            Opened,
            ctx,
            accident_id=str(cmd.accident_id),
            grade=grade.code,
            occurred_at=accident["occurred_at"],
            division=division,
            tier=ctx.tier,
            leader=cmd.leader,
            members=list(cmd.members),
            assigned_tier=tier.value,
            reason=cmd.reason,
        )

    def extend_report(self, cmd: ExtendReport, ctx: Context) -> None:
        self._guard(ctx)
        if self.submitted_at is not None:
            raise Refused(
                _(
                    "the report was submitted at {at}: its deadline can no longer be extended",
                    at=iso(self.submitted_at),
                )
            )
        until = to_ms(cmd.until)
        if until <= self.report_due():
            raise Invalid.field(
                "until",
                _(
                    "{until} is not later than the current deadline {due}",
                    until=iso(until),
                    due=iso(self.report_due()),
                ),
            )
        limit = self.report_limit()
        if until > limit:
            raise Refused(
                _(
                    "the report deadline can be extended to at most {max_days} days from the "
                    "accident, that is {limit} (24:00 China time of the last day); {until} is "
                    "later (493号令 Art. 29: {days} days, extended by at most {more})",
                    max_days=REPORT_MAX_DAYS,
                    limit=iso(limit),
                    until=iso(until),
                    days=REPORT_DAYS,
                    more=REPORT_MAX_DAYS - REPORT_DAYS,
                )
            )
        self._trigger(ReportExtended, ctx, until=until, reason=cmd.reason)

    def submit_report(self, cmd: SubmitReport, ctx: Context) -> None:
        self._guard(ctx)
        if self.submitted_at is not None:
            raise Refused(
                _(
                    "the report was already submitted at {at}; correct it instead if that "
                    "record is wrong",
                    at=iso(self.submitted_at),
                )
            )
        at = self._time(ctx, "submitted_at", cmd.submitted_at, self.occurred_at, "accident")
        self._trigger(ReportSubmitted, ctx, submitted_at=at, summary=cmd.summary)

    def extend_reply(self, cmd: ExtendReply, ctx: Context) -> None:
        self._guard(ctx)
        if self.grade != Grade.ESPECIALLY_MAJOR:
            raise Refused(
                _(
                    "the reply to a {grade} accident's report is due within {days} days and "
                    "cannot be extended: only 特别重大 accidents allow an extension "
                    "(493号令 Art. 32)",
                    grade=self.grade.label,
                    days=REPLY_DAYS,
                )
            )
        submitted = self._need_report(_("extend the reply deadline"))
        if self.replied_at is not None:
            raise Refused(
                _(
                    "the reply was recorded at {at}: nothing to extend",
                    at=iso(self.replied_at),
                )
            )
        until = to_ms(cmd.until)
        due = self.reply_due()
        assert due is not None
        if until <= due:
            raise Invalid.field(
                "until",
                _(
                    "{until} is not later than the current deadline {due}",
                    until=iso(until),
                    due=iso(due),
                ),
            )
        limit = self._reply_limit(submitted)
        if until > limit:
            raise Refused(
                _(
                    "the reply to a 特别重大 accident's report can be extended by at most "
                    "{more} days, to {limit} (24:00 China time of the {max_days}th day); "
                    "{until} is later (493号令 Art. 32)",
                    more=REPLY_MAX_DAYS - REPLY_DAYS_ESPECIALLY_MAJOR,
                    limit=iso(limit),
                    max_days=REPLY_MAX_DAYS,
                    until=iso(until),
                )
            )
        self._trigger(ReplyExtended, ctx, until=until, reason=cmd.reason)

    def record_reply(self, cmd: RecordReply, ctx: Context) -> None:
        self._guard(ctx)
        submitted = self._need_report(_("record the reply (批复)"))
        if self.replied_at is not None:
            raise Refused(
                _(
                    "the reply was already recorded at {at}; correct it instead if that record "
                    "is wrong",
                    at=iso(self.replied_at),
                )
            )
        at = self._time(ctx, "replied_at", cmd.replied_at, submitted, "report")
        self._trigger(Replied, ctx, replied_at=at, summary=cmd.summary)

    def close(self, cmd: CloseInvestigation, ctx: Context) -> None:
        self._guard(ctx)
        if self.replied_at is None:
            raise Refused(
                _(
                    "an investigation is closed after the government's reply (批复) to its "
                    "report (493号令 Art. 32); {stage}",
                    stage=self._stage(),
                )
            )
        self._trigger(Closed, ctx, note=cmd.note)

    def correct(self, cmd: CorrectInvestigation, ctx: Context) -> None:
        self._guard(ctx)
        proposed: dict[str, Any] = {f: getattr(cmd, f) for f in CORRECTABLE}
        for field, value in proposed.items():
            if value is None:
                continue
            if getattr(self, field) is None:
                raise Invalid.field(
                    field,
                    _("no report was recorded yet: nothing to correct")
                    if field in ("submitted_at", "report_summary")
                    else _("no reply was recorded yet: nothing to correct"),
                )
            if field in ("submitted_at", "replied_at"):
                proposed[field] = not_in_future(ctx, field, value)
        found = changes({f: getattr(self, f) for f in CORRECTABLE}, proposed)
        if not found:
            raise Invalid.field(
                "*", _("the correction changes nothing: every value given equals the record")
            )
        submitted = found.get("submitted_at", self.submitted_at)
        replied = found.get("replied_at", self.replied_at)
        if submitted is not None and submitted < self.occurred_at:
            raise Invalid.field(
                "submitted_at",
                _(
                    "{time} is earlier than the accident ({accident})",
                    time=iso(submitted),
                    accident=iso(self.occurred_at),
                ),
            )
        if replied is not None and submitted is not None and replied < submitted:
            raise Invalid.field(
                "replied_at",
                _(
                    "{time} is earlier than the report ({report})",
                    time=iso(replied),
                    report=iso(submitted),
                ),
            )
        if "submitted_at" in found and self.reply_extensions:
            limit = self._reply_limit(found["submitted_at"])
            if self.reply_extensions[-1]["until"] > limit:
                raise Refused(
                    _(
                        "with the report submitted at {submitted}, the reply deadline extended "
                        "to {until} would exceed the limit {limit} (493号令 Art. 32)",
                        submitted=iso(submitted),
                        until=iso(self.reply_extensions[-1]["until"]),
                        limit=iso(limit),
                    )
                )
        self._trigger(InvestigationCorrected, ctx, changes=found, reason=cmd.reason)

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self._guard(ctx, closed_too=True)
        self._trigger(InvestigationVoided, ctx, reason=cmd.reason)

    # -- rules ------------------------------------------------------------------------------
    def _guard(self, ctx: Context, closed_too: bool = False) -> None:
        """Live, owned by this tier, and (unless ``closed_too``, as for a void) not closed."""
        self.ensure_live()
        if ctx.tier != self.tier:
            raise Refused(
                _(
                    "investigation {id} belongs to the {tier} node that opened it "
                    "(493号令 Arts. 19, 20); this is a {here} node",
                    id=str(self.id),
                    tier=tier_label(self.tier),
                    here=tier_label(ctx.tier),
                )
            )
        if self.closed is not None and not closed_too:
            raise Refused(
                _(
                    "investigation {id} was closed at {at}; nothing more can be recorded on it",
                    id=str(self.id),
                    at=self.closed["at"],
                )
            )

    def _need_report(self, action: Message) -> int:
        if self.submitted_at is None:
            raise Refused(_("cannot {action}: {stage}", action=action, stage=self._stage()))
        return self.submitted_at

    def _stage(self) -> Message:
        if self.submitted_at is None:
            return _("the report is not submitted yet (due {due})", due=iso(self.report_due()))
        return _(
            "the report was submitted, the reply is not recorded (due {due})",
            due=iso(self.reply_due()),
        )

    def _time(self, ctx: Context, field: str, moment: datetime, after: int, what: str) -> int:
        """``moment`` in ms, not before ``after``: the time of the ``what`` ("accident" or
        "report") it follows."""
        ms = not_in_future(ctx, field, moment)
        if ms < after:
            raise Invalid.field(
                field,
                _(
                    "{time} is earlier than the accident ({accident})",
                    time=iso(ms),
                    accident=iso(after),
                )
                if what == "accident"
                else _(
                    "{time} is earlier than the report ({report})",
                    time=iso(ms),
                    report=iso(after),
                ),
            )
        return ms

    # -- deadlines --------------------------------------------------------------------------
    def report_due(self) -> int:
        """The report is in time while submitted before this (Art. 29: within 60 days of the
        accident, or the extended deadline)."""
        if self.report_extensions:
            return int(self.report_extensions[-1]["until"])
        return period_end(self.occurred_at, REPORT_DAYS)

    def report_limit(self) -> int:
        return period_end(self.occurred_at, REPORT_MAX_DAYS)

    def reply_due(self) -> int | None:
        if self.submitted_at is None:
            return None
        if self.reply_extensions:
            return int(self.reply_extensions[-1]["until"])
        return period_end(self.submitted_at, self._reply_days())

    def _reply_days(self) -> int:
        if self.grade == Grade.ESPECIALLY_MAJOR:
            return REPLY_DAYS_ESPECIALLY_MAJOR
        return REPLY_DAYS

    def _reply_limit(self, submitted: int) -> int:
        return period_end(submitted, REPLY_MAX_DAYS)

    # -- reading ----------------------------------------------------------------------------
    def status(self) -> str:
        if self.closed is not None:
            return "closed"
        if self.replied_at is not None:
            return "replied"
        if self.submitted_at is not None:
            return "reported"
        return "investigating"

    def state(self) -> dict[str, Any]:
        report_due, reply_due = self.report_due(), self.reply_due()
        especially_major = self.grade == Grade.ESPECIALLY_MAJOR
        return {
            "status": self.status(),
            "accident_id": self.accident_id,
            "grade": self.grade.code,
            "grade_label": self.grade.label,
            "tier": self.tier,
            "assigned_tier": self.assigned_tier,
            "reason": self.reason,
            "division": self.division,
            "occurred_at": iso(self.occurred_at),
            "leader": self.leader,
            "members": self.members,
            "report": {
                "due": iso(report_due),
                "last_day": last_day(report_due),
                "extendable_to": iso(self.report_limit()),
                "extensions": _shown(self.report_extensions),
                "submitted_at": iso(self.submitted_at),
                "late": None if self.submitted_at is None else self.submitted_at >= report_due,
                "summary": self.report_summary,
            },
            "reply": {
                "due": iso(reply_due),
                "last_day": last_day(reply_due),
                "extendable_to": (
                    iso(self._reply_limit(self.submitted_at))
                    if especially_major and self.submitted_at is not None
                    else None
                ),
                "extensions": _shown(self.reply_extensions),
                "replied_at": iso(self.replied_at),
                "late": (
                    None
                    if self.replied_at is None or reply_due is None
                    else self.replied_at >= reply_due
                ),
                "summary": self.reply_summary,
            },
            "closed": self.closed,
        }


Opened.CREATES = Investigation


def _shown(extensions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"until": iso(e["until"]), "reason": e["reason"], "at": iso(e["at"])} for e in extensions
    ]
