"""What an enforcement case records: vocabularies (hazard classes, measures, penalty types,
stages) and the command inputs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from domain.base import DAY_MS, Command, Correction, Reason, UpdateCommand
from domain.fields import CreditCode, Moment, Name, PlaceCode, Text, Yuan
from domain.i18n import N_, _
from domain.i18n import Text as Message

EXTENSION_NOTICE_MS = 10 * DAY_MS  # extension requested no later than 10 days before the deadline
# Periods of 行政处罚法 (2021) that Art. 85 counts in working days (不含法定节假日), by the node's
# calendar (docs/domain.md §3.3, §9)
HEARING_DAYS = 5  # Art. 64(1): a hearing is requested within 5 working days of the notice (告知)
SERVICE_DAYS = 7  # Art. 61: a decision not handed over at once is served within 7 working days
# Art. 64(2): the parties are told the hearing's time and place 7 working days before it
HEARING_NOTICE_DAYS = 7
# before working days, a notice's window was 3 calendar days (15号令); notices recorded then keep it
LEGACY_HEARING_DAYS = 3


class HazardClass(StrEnum):
    GENERAL = "general"  # 一般事故隐患
    MAJOR = "major"  # 重大事故隐患


class Measure(StrEnum):
    """现场处理措施."""

    CORRECT_ON_SPOT = "correct_on_spot"  # 当场纠正
    REMOVE_AT_ONCE = "remove_at_once"  # 责令立即排除
    WITHDRAW_WORKERS = "withdraw_workers"  # 撤出作业人员
    SUSPEND_PRODUCTION = "suspend_production"  # 责令暂时停产停业
    STOP_CONSTRUCTION = "stop_construction"  # 停止建设 / 停止施工
    STOP_USE = "stop_use"  # 停止使用相关设施、设备
    SEIZE = "seize"  # 查封、扣押


class PenaltyType(StrEnum):
    """Penalty types (安全生产违法行为行政处罚办法 Art. 5)."""

    WARNING = "warning"  # 警告
    FINE = "fine"  # 罚款
    ORDER_CORRECTION = "order_correction"  # 责令改正 / 限期改正 / 停止违法行为
    CONFISCATION = "confiscation"  # 没收违法所得、非法开采的煤炭产品、采掘设备
    SUSPEND_PRODUCTION = "suspend_production"  # 责令停产停业整顿 / 停止建设 / 停止施工
    SUSPEND_LICENCE = "suspend_licence"  # 暂扣许可证 / 暂停执业资格
    REVOKE_LICENCE = "revoke_licence"  # 吊销许可证 / 撤销执业资格
    CLOSURE = "closure"  # 关闭
    OTHER = "other"  # 其他


MONEY_PENALTIES = frozenset({PenaltyType.FINE, PenaltyType.CONFISCATION})

# What a person reads for a penalty type (the value stays on the wire).
PENALTY_LABELS = {
    "warning": N_("warning"),
    "fine": N_("fine"),
    "order_correction": N_("order_correction"),
    "confiscation": N_("confiscation"),
    "suspend_production": N_("suspend_production"),
    "suspend_licence": N_("suspend_licence"),
    "revoke_licence": N_("revoke_licence"),
    "closure": N_("closure"),
    "other": N_("other"),
}


def penalty_label(kind: str) -> Message:
    """A penalty type as a person reads it, in their language."""
    return Message(PENALTY_LABELS.get(str(kind), str(kind)), {})


class Stage(StrEnum):
    INSPECTING = "inspecting"
    RECTIFYING = "rectifying"  # an order is open
    RECTIFIED = "rectified"  # re-inspection passed
    RECTIFICATION_FAILED = "rectification_failed"
    FILED = "filed"  # 立案
    NOTIFIED = "notified"  # 告知
    DECIDED = "decided"
    SERVED = "served"
    EXECUTED = "executed"
    CLOSED = "closed"


# What a person reads for a stage (the value stays on the wire).
STAGE_LABELS = {
    "inspecting": N_("inspecting"),
    "rectifying": N_("rectifying"),
    "rectified": N_("rectified"),
    "rectification_failed": N_("rectification_failed"),
    "filed": N_("filed"),
    "notified": N_("notified"),
    "decided": N_("decided"),
    "served": N_("served"),
    "executed": N_("executed"),
    "closed": N_("closed"),
}


def stage_label(stage: str) -> Message:
    """A case's stage as a person reads it, in their language."""
    return Message(STAGE_LABELS.get(str(stage), str(stage)), {})


class CloseOutcome(StrEnum):
    NO_FINDINGS = "no_findings"  # 无问题
    RECTIFIED = "rectified"  # 整改合格
    EXECUTED = "executed"  # 处罚执行完毕
    NO_PENALTY = "no_penalty"  # 不予处罚
    WITHDRAWN = "withdrawn"  # 撤销立案
    TRANSFERRED = "transferred"  # 移送


# -- commands ---------------------------------------------------------------------------------


class Inspector(Command):
    name: Name
    badge: Annotated[str, Field(min_length=1, max_length=40, description="执法证号")]


def _two_officers(officers: list[Inspector]) -> list[Inspector]:
    badges = [i.badge for i in officers]
    if len(set(badges)) != len(badges):
        raise ValueError(_("the same enforcement ID is listed twice"))
    if len(officers) < 2:
        raise ValueError(_("at least two enforcement officers (执法人员不得少于两人)"))
    return officers


Officers = Annotated[
    list[Inspector],
    AfterValidator(_two_officers),
    Field(description="At least two distinct officers, with their enforcement IDs."),
]


class OpenInspection(Command):
    enterprise_credit_code: CreditCode
    enterprise_name: Name
    division: PlaceCode = Field(description="Where the inspected site is (GB/T 2260).")
    inspectors: Officers
    started_at: Moment
    subject: Text | None = Field(default=None, description="检查事项 / plan.")


class RecordHazard(UpdateCommand):
    hazard_class: HazardClass
    description: Text
    rectified_on_site: bool = False


class TakeMeasure(UpdateCommand):
    measure: Measure
    description: Text
    hazards: list[int] = Field(
        default_factory=list, description="Numbers of the hazards concerned."
    )


class OrderRectification(UpdateCommand):
    deadline: Moment
    hazards: list[int] = Field(min_length=1, description="Numbers of the hazards to rectify.")
    document_no: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class RequestExtension(UpdateCommand):
    new_deadline: Moment
    reason: str = Reason


class DecideExtension(UpdateCommand):
    granted: bool
    reason: str = Reason


class Reinspect(UpdateCommand):
    passed: bool
    findings: Text
    inspectors: Officers


class FileCase(UpdateCommand):
    violations: Text = Field(description="违法行为 and the provisions violated.")


class RecordEvidence(UpdateCommand):
    evidence_type: Annotated[
        str, Field(min_length=1, max_length=40, description="笔录/书证/物证/视听资料...")
    ]
    description: Text
    collected_by: Officers


class PenaltyItem(Command):
    type: PenaltyType
    amount_yuan: Yuan | None = Field(default=None, description="For fines and confiscations only.")

    @model_validator(mode="after")
    def _amount(self) -> PenaltyItem:
        if self.type in MONEY_PENALTIES and not self.amount_yuan:
            raise ValueError(
                _("a {type} needs a positive amount_yuan", type=penalty_label(self.type))
            )
        if self.type not in MONEY_PENALTIES and self.amount_yuan is not None:
            raise ValueError(_("a {type} carries no amount", type=penalty_label(self.type)))
        return self


class NotifyPenalty(UpdateCommand):
    penalties: list[PenaltyItem] = Field(min_length=1)
    facts: Text


class RequestHearing(UpdateCommand):
    pass


class HoldHearing(UpdateCommand):
    outcome: Text
    notified_at: Moment = Field(
        description="When the parties were told the hearing's time and place (通知听证), at least"
        " 7 working days before it (行政处罚法 Arts. 64(2), 85)."
    )
    held_at: Moment | None = Field(
        default=None, description="When the hearing was held; by default, now."
    )
    place: Name | None = Field(default=None, description="Where it was held, as notified.")


class DecidePenalty(UpdateCommand):
    penalties: list[PenaltyItem] = Field(min_length=1)
    decision_no: Annotated[str, Field(min_length=1, max_length=100)]


class ServeDecision(UpdateCommand):
    served_at: Moment
    method: Annotated[str, Field(min_length=1, max_length=40, description="直接/留置/邮寄/公告...")]


class ExecutePenalty(UpdateCommand):
    note: Text | None = None


class TransferCase(UpdateCommand):
    to_authority: Name = Field(description="公安机关, 司法机关, or another department.")
    reason: str = Reason


class RecommendLicenceAction(UpdateCommand):
    licence_number: Annotated[str, Field(min_length=1, max_length=100)]
    action: Annotated[str, Field(pattern="^(suspend|revoke)$")]
    reason: str = Reason


class CloseCase(UpdateCommand):
    outcome: CloseOutcome
    note: Text | None = None


class CorrectCase(Correction):
    enterprise_name: Name | None = None
    subject: Text | None = None
