"""Events of an enforcement case, under stable wire names (``case.*/1``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.base import Event, Voided, period_end
from domain.enforcement.commands import LEGACY_HEARING_DAYS, Stage

if TYPE_CHECKING:
    from domain.enforcement.case import EnforcementCase

# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InspectionOpened(Event):
    NAME = "case.inspection_opened/1"
    enterprise_id: str
    enterprise_credit_code: str
    enterprise_name: str
    division: str
    inspectors: list[dict[str, str]]
    started_at: int
    subject: str | None

    def apply(self, agg: EnforcementCase) -> None:
        agg.facts.update(self.payload())
        agg.stage = Stage.INSPECTING


@dataclass(frozen=True, kw_only=True)
class HazardRecorded(Event):
    NAME = "case.hazard_recorded/1"
    number: int
    hazard_class: str
    description: str
    rectified_on_site: bool

    def apply(self, agg: EnforcementCase) -> None:
        agg.hazards.append(
            {
                "number": self.number,
                "class": self.hazard_class,
                "description": self.description,
                "rectified": self.rectified_on_site,
            }
        )


@dataclass(frozen=True, kw_only=True)
class MeasureTaken(Event):
    NAME = "case.measure_taken/1"
    measure: str
    description: str
    hazards: list[int]

    def apply(self, agg: EnforcementCase) -> None:
        agg.measures.append(
            {"measure": self.measure, "description": self.description, "hazards": self.hazards}
        )


@dataclass(frozen=True, kw_only=True)
class RectificationOrdered(Event):
    NAME = "case.rectification_ordered/1"
    deadline: int
    hazards: list[int]
    document_no: str | None

    def apply(self, agg: EnforcementCase) -> None:
        agg.order = {
            "ordered_at": self.recorded_at,
            "deadline": self.deadline,
            "hazards": self.hazards,
            "document_no": self.document_no,
            "extension": None,
        }
        agg.stage = Stage.RECTIFYING


@dataclass(frozen=True, kw_only=True)
class ExtensionRequested(Event):
    NAME = "case.extension_requested/1"
    new_deadline: int
    reason: str

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.order is not None
        agg.order["extension"] = {
            "requested_at": self.recorded_at,
            "new_deadline": self.new_deadline,
            "reason": self.reason,
            "granted": None,
        }


@dataclass(frozen=True, kw_only=True)
class ExtensionDecided(Event):
    NAME = "case.extension_decided/1"
    granted: bool
    reason: str

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.order is not None and agg.order["extension"] is not None
        agg.order["extension"]["granted"] = self.granted
        agg.order["extension"]["decision_reason"] = self.reason
        if self.granted:
            agg.order["deadline"] = agg.order["extension"]["new_deadline"]


@dataclass(frozen=True, kw_only=True)
class Reinspected(Event):
    NAME = "case.reinspected/1"
    passed: bool
    findings: str
    inspectors: list[dict[str, str]]

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.order is not None
        agg.reinspections.append(
            {"at": self.recorded_at, "passed": self.passed, "findings": self.findings}
        )
        if self.passed:
            for h in agg.hazards:
                if h["number"] in agg.order["hazards"]:
                    h["rectified"] = True
            agg.stage = Stage.RECTIFIED
        else:
            agg.stage = Stage.RECTIFICATION_FAILED


@dataclass(frozen=True, kw_only=True)
class CaseFiled(Event):
    NAME = "case.filed/1"
    violations: str

    def apply(self, agg: EnforcementCase) -> None:
        agg.filed = {"at": self.recorded_at, "violations": self.violations}
        agg.stage = Stage.FILED


@dataclass(frozen=True, kw_only=True)
class EvidenceRecorded(Event):
    NAME = "case.evidence_recorded/1"
    evidence_type: str
    description: str
    collected_by: list[dict[str, str]]

    def apply(self, agg: EnforcementCase) -> None:
        agg.evidence.append({"type": self.evidence_type, "description": self.description})


@dataclass(frozen=True, kw_only=True)
class PenaltyNotified(Event):
    NAME = "case.penalty_notified/1"
    penalties: list[dict[str, Any]]
    facts: str
    # when the window to state a defence or request a hearing closes (5 working days, counted
    # by the recording node's calendar); None in notices recorded before it was kept
    hearing_window_ends: int | None = None

    def apply(self, agg: EnforcementCase) -> None:
        ends = self.hearing_window_ends
        agg.notice = {
            "at": self.recorded_at,
            "penalties": self.penalties,
            "hearing_window_ends": (
                period_end(self.recorded_at, LEGACY_HEARING_DAYS) if ends is None else ends
            ),
            "hearing": None,
        }
        agg.stage = Stage.NOTIFIED


@dataclass(frozen=True, kw_only=True)
class HearingRequested(Event):
    NAME = "case.hearing_requested/1"

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.notice is not None
        agg.notice["hearing"] = {"requested_at": self.recorded_at, "held": None}


@dataclass(frozen=True, kw_only=True)
class HearingHeld(Event):
    NAME = "case.hearing_held/1"
    outcome: str
    # when the parties were told the hearing's time and place (行政处罚法 Art. 64(2)), when and
    # where it was held; None in hearings recorded before they were kept (held when recorded)
    notified_at: int | None = None
    held_at: int | None = None
    place: str | None = None

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.notice is not None and agg.notice["hearing"] is not None
        agg.notice["hearing"]["held"] = {
            "at": self.recorded_at if self.held_at is None else self.held_at,
            "outcome": self.outcome,
            "notified_at": self.notified_at,
            "place": self.place,
        }


@dataclass(frozen=True, kw_only=True)
class PenaltyDecided(Event):
    NAME = "case.penalty_decided/1"
    penalties: list[dict[str, Any]]
    decision_no: str
    # by when the decision is served (7 working days); None in decisions recorded before it
    service_due: int | None = None

    def apply(self, agg: EnforcementCase) -> None:
        agg.decision = {
            "at": self.recorded_at,
            "penalties": self.penalties,
            "decision_no": self.decision_no,
            "service_due": self.service_due,
            "served": None,
            "executed": None,
        }
        agg.stage = Stage.DECIDED


@dataclass(frozen=True, kw_only=True)
class DecisionServed(Event):
    NAME = "case.decision_served/1"
    served_at: int
    method: str

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.decision is not None
        due = agg.decision.get("service_due")
        agg.decision["served"] = {
            "at": self.served_at,
            "method": self.method,
            "late": None if due is None else self.served_at >= due,
        }
        agg.stage = Stage.SERVED


@dataclass(frozen=True, kw_only=True)
class PenaltyExecuted(Event):
    NAME = "case.penalty_executed/1"
    note: str | None

    def apply(self, agg: EnforcementCase) -> None:
        assert agg.decision is not None
        agg.decision["executed"] = {"at": self.recorded_at, "note": self.note}
        agg.stage = Stage.EXECUTED


@dataclass(frozen=True, kw_only=True)
class CaseTransferred(Event):
    NAME = "case.transferred/1"
    to_authority: str
    reason: str

    def apply(self, agg: EnforcementCase) -> None:
        agg.transfers.append(
            {"at": self.recorded_at, "to": self.to_authority, "reason": self.reason}
        )


@dataclass(frozen=True, kw_only=True)
class LicenceActionRecommended(Event):
    NAME = "case.licence_action_recommended/1"
    licence_number: str
    action: str
    reason: str

    def apply(self, agg: EnforcementCase) -> None:
        agg.recommendations.append(
            {"licence_number": self.licence_number, "action": self.action, "reason": self.reason}
        )


@dataclass(frozen=True, kw_only=True)
class CaseClosed(Event):
    NAME = "case.closed/1"
    outcome: str
    note: str | None

    def apply(self, agg: EnforcementCase) -> None:
        agg.closed = {"at": self.recorded_at, "outcome": self.outcome, "note": self.note}
        agg.stage = Stage.CLOSED


@dataclass(frozen=True, kw_only=True)
class CaseCorrected(Event):
    NAME = "case.corrected/1"
    changes: dict[str, Any]
    reason: str

    def apply(self, agg: EnforcementCase) -> None:
        agg.facts.update(self.changes)


@dataclass(frozen=True, kw_only=True)
class CaseVoided(Voided):
    NAME = "case.voided/1"
