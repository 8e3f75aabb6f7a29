"""The enforcement case aggregate: the rules of each step and the order of the steps."""

from __future__ import annotations

from typing import Any

from domain.base import Aggregate, Context, VoidCommand, iso, last_day, not_in_future, to_ms
from domain.codes import enterprise_id, in_subtree, tier_label
from domain.enforcement.commands import (
    EXTENSION_NOTICE_MS,
    HEARING_DAYS,
    HEARING_NOTICE_DAYS,
    SERVICE_DAYS,
    CloseCase,
    CloseOutcome,
    CorrectCase,
    DecideExtension,
    DecidePenalty,
    ExecutePenalty,
    FileCase,
    HoldHearing,
    NotifyPenalty,
    OpenInspection,
    OrderRectification,
    PenaltyItem,
    PenaltyType,
    RecommendLicenceAction,
    RecordEvidence,
    RecordHazard,
    Reinspect,
    RequestExtension,
    RequestHearing,
    ServeDecision,
    Stage,
    TakeMeasure,
    TransferCase,
    penalty_label,
    stage_label,
)
from domain.enforcement.events import (
    CaseClosed,
    CaseCorrected,
    CaseFiled,
    CaseTransferred,
    CaseVoided,
    DecisionServed,
    EvidenceRecorded,
    ExtensionDecided,
    ExtensionRequested,
    HazardRecorded,
    HearingHeld,
    HearingRequested,
    InspectionOpened,
    LicenceActionRecommended,
    MeasureTaken,
    PenaltyDecided,
    PenaltyExecuted,
    PenaltyNotified,
    RectificationOrdered,
    Reinspected,
)
from domain.errors import Invalid, Refused
from domain.i18n import Text, _

# -- aggregate --------------------------------------------------------------------------------

PENALTY_STAGES = (Stage.FILED, Stage.NOTIFIED, Stage.DECIDED, Stage.SERVED, Stage.EXECUTED)


class EnforcementCase(Aggregate):
    KIND = "case"

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.facts: dict[str, Any] = {}
        self.stage = Stage.INSPECTING
        self.hazards: list[dict[str, Any]] = []
        self.measures: list[dict[str, Any]] = []
        self.order: dict[str, Any] | None = None
        self.reinspections: list[dict[str, Any]] = []
        self.filed: dict[str, Any] | None = None
        self.evidence: list[dict[str, Any]] = []
        self.notice: dict[str, Any] | None = None
        self.decision: dict[str, Any] | None = None
        self.transfers: list[dict[str, Any]] = []
        self.recommendations: list[dict[str, Any]] = []
        self.closed: dict[str, Any] | None = None

    # -- inspection and rectification -----------------------------------------------------------
    @classmethod
    def open_inspection(cls, cmd: OpenInspection, ctx: Context) -> EnforcementCase:
        if not in_subtree(ctx.region, cmd.division):
            raise Invalid.field(
                "division",
                _(
                    "{division} is outside this node's area ({region})",
                    division=cmd.division,
                    region=ctx.region,
                ),
            )
        return cls.start(
            ctx.new_id(),
            InspectionOpened,
            ctx,
            enterprise_id=str(enterprise_id(cmd.enterprise_credit_code, cmd.division)),
            enterprise_credit_code=cmd.enterprise_credit_code,
            enterprise_name=cmd.enterprise_name,
            division=cmd.division,
            inspectors=[i.model_dump() for i in cmd.inspectors],
            started_at=not_in_future(ctx, "started_at", cmd.started_at),
            subject=cmd.subject,
        )

    def record_hazard(self, cmd: RecordHazard, ctx: Context) -> None:
        self._ensure_open()
        self._ensure_before_filing(
            _("hazards are recorded during the inspection, before a case is filed")
        )
        self._trigger(
            HazardRecorded,
            ctx,
            number=len(self.hazards) + 1,
            hazard_class=cmd.hazard_class.value,
            description=cmd.description,
            rectified_on_site=cmd.rectified_on_site,
        )

    def take_measure(self, cmd: TakeMeasure, ctx: Context) -> None:
        self._ensure_open()
        self._check_hazard_numbers(cmd.hazards)
        self._trigger(
            MeasureTaken,
            ctx,
            measure=cmd.measure.value,
            description=cmd.description,
            hazards=cmd.hazards,
        )

    def order_rectification(self, cmd: OrderRectification, ctx: Context) -> None:
        self._ensure_open()
        if self.stage not in (Stage.INSPECTING, Stage.RECTIFIED, Stage.RECTIFICATION_FAILED):
            raise Refused(
                _(
                    "a rectification order is given after the inspection; the case is {stage}",
                    stage=stage_label(self.stage),
                )
            )
        self._check_hazard_numbers(cmd.hazards)
        done = [h["number"] for h in self.hazards if h["number"] in cmd.hazards and h["rectified"]]
        if done:
            raise Invalid.field(
                "hazards", _("hazards {numbers} are already rectified", numbers=str(done))
            )
        deadline = to_ms(cmd.deadline)
        if deadline <= ctx.now_ms:
            raise Invalid.field(
                "deadline",
                _("the deadline {deadline} has already passed", deadline=iso(deadline)),
            )
        self._trigger(
            RectificationOrdered,
            ctx,
            deadline=deadline,
            hazards=sorted(cmd.hazards),
            document_no=cmd.document_no,
        )

    def request_extension(self, cmd: RequestExtension, ctx: Context) -> None:
        order = self._open_order(_("an extension"))
        if order["extension"] is not None:
            raise Refused(_("an extension was already requested for this order"))
        latest = order["deadline"] - EXTENSION_NOTICE_MS
        if ctx.now_ms > latest:
            raise Refused(
                _(
                    "an extension must be requested no later than 10 days before the deadline "
                    "{deadline}, that is by {latest}; it is now {now}",
                    deadline=iso(order["deadline"]),
                    latest=iso(latest),
                    now=iso(ctx.now_ms),
                )
            )
        new_deadline = to_ms(cmd.new_deadline)
        if new_deadline <= order["deadline"]:
            raise Invalid.field(
                "new_deadline",
                _(
                    "must be later than the current deadline {deadline}",
                    deadline=iso(order["deadline"]),
                ),
            )
        self._trigger(ExtensionRequested, ctx, new_deadline=new_deadline, reason=cmd.reason)

    def decide_extension(self, cmd: DecideExtension, ctx: Context) -> None:
        order = self._open_order(_("an extension decision"))
        if order["extension"] is None or order["extension"]["granted"] is not None:
            raise Refused(_("there is no pending extension request to decide"))
        self._trigger(ExtensionDecided, ctx, granted=cmd.granted, reason=cmd.reason)

    def reinspect(self, cmd: Reinspect, ctx: Context) -> None:
        self._open_order(_("a re-inspection (复查)"))
        self._trigger(
            Reinspected,
            ctx,
            passed=cmd.passed,
            findings=cmd.findings,
            inspectors=[i.model_dump() for i in cmd.inspectors],
        )

    # -- penalty case -------------------------------------------------------------------------
    def file_case(self, cmd: FileCase, ctx: Context) -> None:
        self._ensure_open()
        if self.filed is not None:
            raise Refused(_("the case was already filed (立案) at {at}", at=iso(self.filed["at"])))
        self._trigger(CaseFiled, ctx, violations=cmd.violations)

    def record_evidence(self, cmd: RecordEvidence, ctx: Context) -> None:
        self._ensure_stage(
            _("evidence is recorded after the case is filed and before the decision"),
            Stage.FILED,
            Stage.NOTIFIED,
        )
        self._trigger(
            EvidenceRecorded,
            ctx,
            evidence_type=cmd.evidence_type,
            description=cmd.description,
            collected_by=[i.model_dump() for i in cmd.collected_by],
        )

    def notify_penalty(self, cmd: NotifyPenalty, ctx: Context) -> None:
        """A new notice before the decision replaces the last one and opens a new window."""
        self._ensure_stage(
            _("the notice of penalty (告知) follows the filing"), Stage.FILED, Stage.NOTIFIED
        )
        _check_penalty_powers(cmd.penalties, ctx)
        if not self.evidence:
            raise Refused(_("record the evidence (调查取证) before notifying the proposed penalty"))
        self._trigger(
            PenaltyNotified,
            ctx,
            penalties=_penalties(cmd.penalties),
            facts=cmd.facts,
            hearing_window_ends=_working_days(
                ctx, HEARING_DAYS, _("the window to request a hearing (行政处罚法 Art. 64(1))")
            ),
        )

    def request_hearing(self, cmd: RequestHearing, ctx: Context) -> None:
        self._ensure_stage(_("a hearing is requested after the notice"), Stage.NOTIFIED)
        assert self.notice is not None
        if self.notice["hearing"] is not None:
            raise Refused(_("a hearing was already requested"))
        if ctx.now_ms >= self.notice["hearing_window_ends"]:
            raise Refused(
                _(
                    "the window to request a hearing closed at {end}: a hearing is requested "
                    "within {days} working days of the notice (行政处罚法 Arts. 64(1), 85); it "
                    "is now {now}",
                    end=iso(self.notice["hearing_window_ends"]),
                    days=HEARING_DAYS,
                    now=iso(ctx.now_ms),
                )
            )
        self._trigger(HearingRequested, ctx)

    def hold_hearing(self, cmd: HoldHearing, ctx: Context) -> None:
        self._ensure_stage(_("a hearing is held after the notice"), Stage.NOTIFIED)
        assert self.notice is not None
        if self.notice["hearing"] is None or self.notice["hearing"]["held"] is not None:
            raise Refused(_("no hearing is pending: the party did not request one, or it was held"))
        notified = not_in_future(ctx, "notified_at", cmd.notified_at)
        if notified < self.notice["at"]:
            raise Invalid.field(
                "notified_at",
                _(
                    "the parties are told the hearing's time and place after the notice of "
                    "penalty (告知) of {at}",
                    at=iso(self.notice["at"]),
                ),
            )
        held = ctx.now_ms if cmd.held_at is None else not_in_future(ctx, "held_at", cmd.held_at)
        earliest = _working_days(
            ctx,
            HEARING_NOTICE_DAYS,
            _("the time between a hearing's notification and the hearing (行政处罚法 Art. 64(2))"),
            start=notified,
        )
        if held < earliest:
            raise Refused(
                _(
                    "a hearing at {held} is too early: the parties are told its time and place "
                    "at least {days} working days before it (行政处罚法 Arts. 64(2), 85); told at "
                    "{notified}, it may be held from {earliest}",
                    held=iso(held),
                    days=HEARING_NOTICE_DAYS,
                    notified=iso(notified),
                    earliest=iso(earliest),
                )
            )
        self._trigger(
            HearingHeld,
            ctx,
            outcome=cmd.outcome,
            notified_at=notified,
            held_at=held,
            place=cmd.place,
        )

    def decide_penalty(self, cmd: DecidePenalty, ctx: Context) -> None:
        self._ensure_stage(_("a penalty is decided after the notice (告知)"), Stage.NOTIFIED)
        assert self.notice is not None
        hearing = self.notice["hearing"]
        if hearing is not None and hearing["held"] is None:
            raise Refused(_("the party requested a hearing: hold it before deciding"))
        if hearing is None and ctx.now_ms < self.notice["hearing_window_ends"]:
            raise Refused(
                _(
                    "the party may state a defence or request a hearing until {end} ({days} "
                    "working days after the notice, 行政处罚法 Arts. 64(1), 85); decide after "
                    "that",
                    end=iso(self.notice["hearing_window_ends"]),
                    days=HEARING_DAYS,
                )
            )
        _check_penalty_powers(cmd.penalties, ctx)
        _check_within_notice(cmd.penalties, self.notice["penalties"])
        self._trigger(
            PenaltyDecided,
            ctx,
            penalties=_penalties(cmd.penalties),
            decision_no=cmd.decision_no,
            service_due=_working_days(
                ctx, SERVICE_DAYS, _("the service of the decision (行政处罚法 Art. 61)")
            ),
        )

    def serve_decision(self, cmd: ServeDecision, ctx: Context) -> None:
        self._ensure_stage(_("a decision is served after it is made"), Stage.DECIDED)
        assert self.decision is not None
        served = not_in_future(ctx, "served_at", cmd.served_at)
        if served < self.decision["at"]:
            raise Invalid.field("served_at", _("a decision cannot be served before it was made"))
        self._trigger(DecisionServed, ctx, served_at=served, method=cmd.method)

    def execute_penalty(self, cmd: ExecutePenalty, ctx: Context) -> None:
        self._ensure_stage(_("a penalty is executed after the decision is served"), Stage.SERVED)
        self._trigger(PenaltyExecuted, ctx, note=cmd.note)

    def transfer(self, cmd: TransferCase, ctx: Context) -> None:
        self._ensure_open()
        self._trigger(CaseTransferred, ctx, to_authority=cmd.to_authority, reason=cmd.reason)

    def recommend_licence_action(self, cmd: RecommendLicenceAction, ctx: Context) -> None:
        """A recommendation only: the suspension or revocation itself is the issuer's event."""
        self._ensure_open()
        self._trigger(
            LicenceActionRecommended,
            ctx,
            licence_number=cmd.licence_number,
            action=cmd.action,
            reason=cmd.reason,
        )

    def close(self, cmd: CloseCase, ctx: Context) -> None:
        self._ensure_open()
        outcome = cmd.outcome
        if self.decision is not None and self.decision["executed"] is None:
            raise Refused(
                _(
                    "penalty decision {number} has not been executed; a case closes after "
                    "execution (结案)",
                    number=self.decision["decision_no"],
                )
            )
        if outcome == CloseOutcome.TRANSFERRED and self.transfers:
            self._trigger(CaseClosed, ctx, outcome=outcome.value, note=cmd.note)
            return  # handed to another authority, whatever stage the case had reached
        if self.stage == Stage.RECTIFYING:
            deadline = iso(self.order["deadline"]) if self.order else None
            raise Refused(
                _(
                    "the rectification ordered with deadline {deadline} has not been "
                    "re-inspected; re-inspect, file a case, or transfer it first",
                    deadline=deadline,
                )
            )
        if self.stage == Stage.RECTIFICATION_FAILED and outcome != CloseOutcome.TRANSFERRED:
            raise Refused(
                _("the re-inspection failed: file a case (立案) or transfer it before closing")
            )
        expected = {
            CloseOutcome.EXECUTED: self.stage == Stage.EXECUTED,
            CloseOutcome.RECTIFIED: self.stage == Stage.RECTIFIED and not self.hazards_open(),
            CloseOutcome.NO_FINDINGS: self.stage == Stage.INSPECTING and not self.hazards_open(),
            CloseOutcome.NO_PENALTY: self.stage in (Stage.FILED, Stage.NOTIFIED),
            CloseOutcome.WITHDRAWN: self.stage in (Stage.FILED, Stage.NOTIFIED),
            CloseOutcome.TRANSFERRED: bool(self.transfers),
        }
        if not expected[outcome]:
            raise Refused(
                _(
                    "outcome {outcome!r} does not fit a case that is {stage} with open hazards",
                    outcome=outcome.value,
                    stage=stage_label(self.stage),
                )
                if self.hazards_open()
                else _(
                    "outcome {outcome!r} does not fit a case that is {stage}",
                    outcome=outcome.value,
                    stage=stage_label(self.stage),
                )
            )
        self._trigger(CaseClosed, ctx, outcome=outcome.value, note=cmd.note)

    def correct(self, cmd: CorrectCase, ctx: Context) -> None:
        self.ensure_live()
        changes = {
            k: v
            for k, v in (("enterprise_name", cmd.enterprise_name), ("subject", cmd.subject))
            if v is not None and v != self.facts.get(k)
        }
        if not changes:
            raise Invalid.field("*", _("the correction changes nothing"))
        self._trigger(CaseCorrected, ctx, changes=changes, reason=cmd.reason)

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self.ensure_live()
        self._trigger(CaseVoided, ctx, reason=cmd.reason)

    # -- helpers ------------------------------------------------------------------------------
    def hazards_open(self) -> list[int]:
        return [h["number"] for h in self.hazards if not h["rectified"]]

    def _ensure_open(self) -> None:
        self.ensure_live()
        if self.closed is not None:
            raise Refused(_("the case was closed at {at}", at=iso(self.closed["at"])))

    def _ensure_stage(self, rule: Text, *stages: Stage) -> None:
        self._ensure_open()
        if self.stage not in stages:
            raise Refused(
                _("{rule}; the case is {stage}", rule=rule, stage=stage_label(self.stage))
            )

    def _ensure_before_filing(self, rule: Text) -> None:
        if self.stage in PENALTY_STAGES:
            raise Refused(
                _("{rule}; the case is {stage}", rule=rule, stage=stage_label(self.stage))
            )

    def _open_order(self, what: Text) -> dict[str, Any]:
        self._ensure_open()
        if self.order is None:
            raise Refused(
                _(
                    "{what} needs a rectification order first (责令限期整改); none was given",
                    what=what,
                )
            )
        if self.stage != Stage.RECTIFYING:
            raise Refused(
                _(
                    "{what} needs an open rectification order; the case is {stage}",
                    what=what,
                    stage=stage_label(self.stage),
                )
            )
        return self.order

    def _check_hazard_numbers(self, numbers: list[int]) -> None:
        unknown = sorted(set(numbers) - {h["number"] for h in self.hazards})
        if unknown:
            raise Invalid.field(
                "hazards",
                _(
                    "no hazards numbered {numbers} in this case (it has {count})",
                    numbers=str(unknown),
                    count=len(self.hazards),
                ),
            )

    def state(self) -> dict[str, Any]:
        facts = dict(self.facts)
        facts["started_at"] = iso(facts.get("started_at"))
        order = None
        if self.order is not None:
            order = {
                **self.order,
                "ordered_at": iso(self.order["ordered_at"]),
                "deadline": iso(self.order["deadline"]),
            }
        return {
            **facts,
            "stage": self.stage.value,
            "hazards": self.hazards,
            "open_hazards": self.hazards_open(),
            "measures": self.measures,
            "rectification_order": order,
            "reinspections": [{**r, "at": iso(r["at"])} for r in self.reinspections],
            "filed": self.filed and {**self.filed, "at": iso(self.filed["at"])},
            "evidence": self.evidence,
            "notice": self.notice
            and {
                **self.notice,
                "at": iso(self.notice["at"]),
                "hearing_window_ends": iso(self.notice["hearing_window_ends"]),
                "hearing_window_last_day": last_day(self.notice["hearing_window_ends"]),
                "hearing": _hearing_view(self.notice["hearing"]),
            },
            "decision": self.decision
            and {
                **self.decision,
                "at": iso(self.decision["at"]),
                "service_due": iso(self.decision.get("service_due")),
                "service_due_last_day": last_day(self.decision.get("service_due")),
            },
            "fines_yuan": sum(
                p.get("amount_yuan") or 0
                for p in (self.decision or {}).get("penalties", [])
                if p["type"] == PenaltyType.FINE
            ),
            "transfers": self.transfers,
            "licence_recommendations": self.recommendations,
            "closed": self.closed and {**self.closed, "at": iso(self.closed["at"])},
        }


InspectionOpened.CREATES = EnforcementCase


def _check_penalty_powers(items: list[PenaltyItem], ctx: Context) -> None:
    """Suspending or revoking a licence is the issuer's decision (docs/architecture.md §3): a
    county or city bureau recommends it instead (case.recommend-licence-action)."""
    issuer_only = {PenaltyType.SUSPEND_LICENCE, PenaltyType.REVOKE_LICENCE}
    if ctx.tier in ("county", "city") and any(p.type in issuer_only for p in items):
        raise Refused(
            _(
                "suspending or revoking a licence is decided by the issuing authority's node; a "
                "{tier} bureau records a recommendation to the issuer instead",
                tier=tier_label(ctx.tier),
            )
        )


def _check_within_notice(items: list[PenaltyItem], noticed: list[dict[str, Any]]) -> None:
    """The decision may not be heavier than the notice (告知): no penalty type that was not
    noticed, no amount above the noticed one. A heavier penalty needs a new notice."""
    ceiling: dict[str, int] = {}
    for n in noticed:
        ceiling[n["type"]] = ceiling.get(n["type"], 0) + (n["amount_yuan"] or 0)
    decided: dict[str, int] = {}
    for item in items:
        decided[item.type.value] = decided.get(item.type.value, 0) + (item.amount_yuan or 0)
    lightest = {PenaltyType.WARNING.value, PenaltyType.ORDER_CORRECTION.value}
    for kind, amount in decided.items():
        if kind in lightest:
            continue  # never heavier than what was noticed
        if kind not in ceiling:
            raise Refused(
                _(
                    "{kind} was not in the notice of penalty (告知): give a new notice first",
                    kind=penalty_label(kind),
                )
            )
        if amount > ceiling[kind]:
            raise Refused(
                _(
                    "{kind} of {amount} yuan is more than the {noticed} yuan noticed: a heavier "
                    "penalty needs a new notice (告知) and hearing window",
                    kind=penalty_label(kind),
                    amount=amount,
                    noticed=ceiling[kind],
                )
            )


def _working_days(ctx: Context, days: int, what: Text, start: int | None = None) -> int:
    """The end of a period of ``days`` working days from ``start`` (by default now; 行政处罚法
    Art. 85: 工作日, 不含法定节假日), by the node's calendar; Refused, naming the period, past the
    years it knows."""
    try:
        return ctx.calendar.working_period_end(ctx.now_ms if start is None else start, days)
    except Refused as e:
        raise Refused(_("{what} cannot be counted: {error}", what=what, error=e)) from None


def _hearing_view(hearing: dict[str, Any] | None) -> dict[str, Any] | None:
    """A hearing as a person reads it: its times in China time (§9)."""
    if hearing is None:
        return None
    held = hearing["held"]
    return {
        "requested_at": iso(hearing["requested_at"]),
        "held": held
        and {**held, "at": iso(held["at"]), "notified_at": iso(held.get("notified_at"))},
    }


def _penalties(items: list[PenaltyItem]) -> list[dict[str, Any]]:
    return [{"type": p.type.value, "amount_yuan": p.amount_yuan} for p in items]
