"""Every command a bureau can record, by stable kind name: one table that the HTTP API, its
OpenAPI document and ``anjian record`` are all built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from domain import accident as acc
from domain import enterprise as ent
from domain import finding as fnd
from domain import investigation as inv
from domain import licence as lic
from domain import receipt  # noqa: F401 - no command records receipts; this defines their event
from domain.base import Aggregate, Command, VoidCommand
from domain.enforcement import commands as case
from domain.enforcement.case import EnforcementCase
from domain.i18n import N_
from domain.sensors import site


@dataclass(frozen=True)
class CommandSpec:
    kind: str  # stable name, e.g. "accident.report"
    summary: str  # English, marked N_: read with domain.i18n.gettext where shown
    model: type[Command]
    aggregate: type[Aggregate]
    path: str  # under /api/v1; "{id}" when the command acts on an existing record
    create: Callable[..., Aggregate] | None = None  # (command, ctx[, fact])
    update: Callable[..., None] | None = None  # (aggregate, command, ctx[, fact])
    needs: str | None = None  # a fact the application looks up for the rule (see node.service)

    @property
    def creates(self) -> bool:
        return self.create is not None


def _on(
    aggregate: type[Aggregate], base: str, specs: list[tuple[str, str, type[Command], str, str]]
) -> tuple[CommandSpec, ...]:
    """Commands on existing records: (kind, summary, model, path segment, method name)."""
    return tuple(
        CommandSpec(
            kind,
            summary,
            model,
            aggregate,
            f"{base}/{{id}}/{segment}",
            update=getattr(aggregate, method),
        )
        for kind, summary, model, segment, method in specs
    )


E, A, C, S = ent.Enterprise, acc.Accident, EnforcementCase, site.Site
L, INV, F = lic.Licence, inv.Investigation, fnd.Finding

SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "enterprise.register",
        N_("Register an enterprise located in this county."),
        ent.RegisterEnterprise,
        E,
        "/enterprises",
        create=E.register,
    ),
    *_on(
        E,
        "/enterprises",
        [
            (
                "enterprise.correct",
                N_("Correct an enterprise's details, with the reason."),
                ent.CorrectEnterprise,
                "corrections",
                "correct",
            ),
            (
                "enterprise.close",
                N_("Record that an enterprise has closed."),
                ent.CloseEnterprise,
                "closure",
                "close",
            ),
            (
                "enterprise.void",
                N_("Void an enterprise registered in error, with the reason."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
    CommandSpec(
        "accident.report",
        N_("Report an accident (事故快报); the grade is derived by 493号令."),
        acc.ReportAccident,
        A,
        "/accidents",
        create=A.report,
    ),
    CommandSpec(
        "accident.report-near-miss",
        N_("Report a 较大涉险 near miss."),
        acc.ReportNearMiss,
        A,
        "/near-misses",
        create=A.report_near_miss,
    ),
    *_on(
        A,
        "/accidents",
        [
            (
                "accident.supplement",
                "补报: new totals after the report; the grade is re-derived.",
                acc.SupplementAccident,
                "supplements",
                "supplement",
            ),
            (
                "accident.correct",
                N_("Correct an accident record made wrongly, with the reason."),
                acc.CorrectAccident,
                "corrections",
                "correct",
            ),
            (
                "accident.void",
                N_("Void an accident record made in error, with the reason."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
    CommandSpec(
        "accident.record-finding",
        N_("Record a finding of 漏报, 谎报 or 瞒报 on an accident's report, with its basis."),
        fnd.RecordFinding,
        F,
        "/findings",
        create=F.record,
        needs="accident",
    ),
    *_on(
        F,
        "/findings",
        [
            (
                "accident.void-finding",
                N_("Void a finding recorded in error, with the reason."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
    CommandSpec(
        "case.open-inspection",
        N_("Open an inspection (检查) by at least two inspectors."),
        case.OpenInspection,
        C,
        "/cases",
        create=C.open_inspection,
    ),
    *_on(
        C,
        "/cases",
        [
            (
                "case.record-hazard",
                N_("Record a hazard found (一般 / 重大隐患)."),
                case.RecordHazard,
                "hazards",
                "record_hazard",
            ),
            (
                "case.take-measure",
                N_("Record an on-site measure (现场处理措施)."),
                case.TakeMeasure,
                "measures",
                "take_measure",
            ),
            (
                "case.order-rectification",
                N_("Order rectification by a deadline (责令限期整改)."),
                case.OrderRectification,
                "rectification-orders",
                "order_rectification",
            ),
            (
                "case.request-extension",
                N_("The enterprise asks to extend the deadline (≥ 10 days before)."),
                case.RequestExtension,
                "extension-requests",
                "request_extension",
            ),
            (
                "case.decide-extension",
                N_("Grant or refuse the extension."),
                case.DecideExtension,
                "extension-decisions",
                "decide_extension",
            ),
            (
                "case.reinspect",
                N_("Re-inspection (复查): passed or failed."),
                case.Reinspect,
                "reinspections",
                "reinspect",
            ),
            ("case.file", "File a penalty case (立案).", case.FileCase, "filing", "file_case"),
            (
                "case.record-evidence",
                N_("Record evidence (调查取证) by at least two officers."),
                case.RecordEvidence,
                "evidence",
                "record_evidence",
            ),
            (
                "case.notify-penalty",
                N_("Notice of the proposed penalty (告知), opening the hearing window."),
                case.NotifyPenalty,
                "penalty-notices",
                "notify_penalty",
            ),
            (
                "case.request-hearing",
                N_("The party requests a hearing (听证) within the window."),
                case.RequestHearing,
                "hearing-requests",
                "request_hearing",
            ),
            (
                "case.hold-hearing",
                N_("Record the hearing held."),
                case.HoldHearing,
                "hearings",
                "hold_hearing",
            ),
            (
                "case.decide-penalty",
                N_("Decide the penalty (行政处罚决定)."),
                case.DecidePenalty,
                "decisions",
                "decide_penalty",
            ),
            (
                "case.serve-decision",
                N_("Serve the decision (送达)."),
                case.ServeDecision,
                "service",
                "serve_decision",
            ),
            (
                "case.execute-penalty",
                N_("Record the penalty executed (执行)."),
                case.ExecutePenalty,
                "execution",
                "execute_penalty",
            ),
            (
                "case.transfer",
                N_("Transfer the case to another authority (移送)."),
                case.TransferCase,
                "transfers",
                "transfer",
            ),
            (
                "case.recommend-licence-action",
                N_("Recommend the issuer suspend or revoke a licence."),
                case.RecommendLicenceAction,
                "licence-recommendations",
                "recommend_licence_action",
            ),
            (
                "case.close",
                N_("Close the case (结案) with its outcome."),
                case.CloseCase,
                "closure",
                "close",
            ),
            (
                "case.correct",
                N_("Correct the case record, with the reason."),
                case.CorrectCase,
                "corrections",
                "correct",
            ),
            (
                "case.void",
                N_("Void a case recorded in error, with the reason."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
    CommandSpec(
        "licence.apply",
        N_("Application for a safety production licence (issuer's node)."),
        lic.ApplyLicence,
        L,
        "/licences",
        create=L.apply_for,
    ),
    *_on(
        L,
        "/licences",
        [
            (
                "licence.accept",
                N_("Accept the application (受理)."),
                lic.AcceptLicence,
                "acceptance",
                "accept",
            ),
            (
                "licence.issue",
                N_("Issue the licence: number kept verbatim, valid 3 years."),
                lic.IssueLicence,
                "issue",
                "issue",
            ),
            (
                "licence.refuse",
                N_("Refuse the licence with written reasons."),
                lic.RefuseLicence,
                "refusal",
                "refuse",
            ),
            (
                "licence.apply-renewal",
                N_("Renewal applied for (from 3 months before expiry)."),
                lic.ApplyRenewal,
                "renewal-applications",
                "apply_renewal",
            ),
            (
                "licence.suspend",
                N_("Suspend (暂扣) the licence."),
                lic.SuspendLicence,
                "suspension",
                "suspend",
            ),
            (
                "licence.reinstate",
                N_("Reinstate a suspended licence."),
                lic.ReinstateLicence,
                "reinstatement",
                "reinstate",
            ),
            (
                "licence.revoke",
                N_("Revoke (吊销) the licence."),
                lic.RevokeLicence,
                "revocation",
                "revoke",
            ),
            (
                "licence.cancel",
                N_("Cancel (注销) the licence."),
                lic.CancelLicence,
                "cancellation",
                "cancel",
            ),
            (
                "licence.expire",
                N_("Record that the licence has expired."),
                lic.ExpireLicence,
                "expiry",
                "expire",
            ),
            (
                "licence.correct",
                N_("Correct the licence record, with the reason."),
                lic.CorrectLicence,
                "corrections",
                "correct",
            ),
            (
                "licence.void",
                N_("Void a licence recorded in error, with the reason."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
    CommandSpec(
        "licence.extend",
        N_("Extend 3 years without review: refused after a fatal accident."),
        lic.ExtendLicence,
        L,
        "/licences/{id}/extension",
        update=L.extend,
        needs="fatal_accidents",
    ),
    CommandSpec(
        "investigation.open",
        N_("Open the investigation of an accident (the grade's tier)."),
        inv.OpenInvestigation,
        INV,
        "/investigations",
        create=INV.open,
        needs="accident",
    ),
    *_on(
        INV,
        "/investigations",
        [
            (
                "investigation.extend-report",
                N_("Extend the report deadline (at most 60 more days)."),
                inv.ExtendReport,
                "report-extensions",
                "extend_report",
            ),
            (
                "investigation.submit-report",
                N_("Record the investigation report submitted."),
                inv.SubmitReport,
                "report",
                "submit_report",
            ),
            (
                "investigation.extend-reply",
                N_("Extend the reply deadline (特别重大 only, ≤ 30 days)."),
                inv.ExtendReply,
                "reply-extensions",
                "extend_reply",
            ),
            (
                "investigation.record-reply",
                N_("Record the government's reply (批复)."),
                inv.RecordReply,
                "reply",
                "record_reply",
            ),
            (
                "investigation.close",
                N_("Close the investigation."),
                inv.CloseInvestigation,
                "closure",
                "close",
            ),
            (
                "investigation.correct",
                N_("Correct the investigation record, with the reason."),
                inv.CorrectInvestigation,
                "corrections",
                "correct",
            ),
            (
                "investigation.void",
                N_("Void an investigation recorded in error."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
    CommandSpec(
        "sensor.register-site",
        N_("Register a monitoring site (mine, tailings dam, plant)."),
        site.RegisterSite,
        S,
        "/sites",
        create=S.register,
    ),
    *_on(
        S,
        "/sites",
        [
            (
                "sensor.register-point",
                N_(
                    "Register a monitoring point; its thresholds and measuring range default by"
                    " type (methane: by location)."
                ),
                site.RegisterPoint,
                "points",
                "register_point",
            ),
            (
                "sensor.change-thresholds",
                N_("Change a point's thresholds, with the reason."),
                site.ChangeThresholds,
                "thresholds",
                "change_thresholds",
            ),
            (
                "sensor.retire-point",
                N_("Retire a monitoring point, with the reason."),
                site.RetirePoint,
                "retirements",
                "retire_point",
            ),
            (
                "sensor.correct-site",
                N_("Correct a site's details, with the reason."),
                site.CorrectSite,
                "corrections",
                "correct",
            ),
            (
                "sensor.void-site",
                N_("Void a site registered in error, with the reason."),
                VoidCommand,
                "void",
                "void",
            ),
        ],
    ),
)

BY_KIND = {spec.kind: spec for spec in SPECS}
AGGREGATES: dict[str, type[Aggregate]] = {spec.aggregate.KIND: spec.aggregate for spec in SPECS}
COLLECTIONS: dict[str, str] = {}  # kind → URL collection, named by its first creating command
for _spec in SPECS:
    if _spec.creates:
        COLLECTIONS.setdefault(_spec.aggregate.KIND, _spec.path.split("/")[1])
assert len(BY_KIND) == len(SPECS), "a command kind is listed twice"
