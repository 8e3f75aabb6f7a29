"""Findings (认定) of 漏报, 谎报 and 瞒报 on an accident's report: 493号令 Art. 4 forbids them
(with 迟报, which the code derives: docs/domain.md §1.5), Arts. 35 and 36 fine the unit for them,
Art. 39 disciplines the local government or bureau that did them. What each means is defined by
《生产安全事故罚款处罚规定》 (应急管理部令第14号, docs/domain.md §1.5): 漏报 is leaving out by
negligence an accident or its facts, 谎报 deliberately misreporting them, 瞒报 concealing an
accident past the deadline, verified (经查证属实).

A finding is a record of its own, owned by the node of the bureau that makes it, referring to the
accident (like a receipt or an investigation: docs/architecture.md §3). Findings are made by the
county where the accident happened, by a tier above it, or by the investigation (Art. 25(2):
认定事故的性质和事故责任), which may sit at any tier (Art. 19); a finding against a bureau's own
report must come from a tier above that bureau, which does not own the accident record. So any
node whose area holds the accident records its findings in its own log, and they replicate up.

Who may record (checked here): a node of the reporting chain (not a backup centre) whose area
holds the place of the accident, on an accident not voided; a finding against a bureau
(``subject`` = ``bureau``) names a bureau of the accident's chain strictly below the recording
node.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from pydantic import Field, model_validator

from domain.base import Aggregate, Command, Context, Event, VoidCommand, Voided, iso
from domain.codes import in_subtree, tier_label
from domain.divisions import chain
from domain.errors import Invalid, Refused
from domain.fields import DivisionCode, Text
from domain.i18n import _
from domain.receipt import CHAIN


class FindingKind(StrEnum):
    OMITTED = "omitted"  # 漏报
    FALSIFIED = "falsified"  # 谎报
    CONCEALED = "concealed"  # 瞒报

    @property
    def label(self) -> str:
        return {"omitted": "漏报", "falsified": "谎报", "concealed": "瞒报"}[self.value]


class Subject(StrEnum):
    UNIT = "unit"  # 事故发生单位 and its people (493号令 Arts. 35, 36)
    BUREAU = "bureau"  # a local government or bureau of the reporting chain (Art. 39)


def article(finding: str, subject: str) -> str:
    """The article that sanctions the finding (493号令)."""
    if subject == Subject.BUREAU:
        return "493号令 Art. 39(2)"
    return "493号令 Art. 35(2)" if finding == FindingKind.OMITTED else "493号令 Art. 36(1)"


# -- commands ---------------------------------------------------------------------------------


class RecordFinding(Command):
    accident_id: uuid.UUID = Field(description="The accident whose report the finding concerns.")
    finding: FindingKind = Field(description="omitted 漏报, falsified 谎报, concealed 瞒报.")
    subject: Subject = Field(
        default=Subject.UNIT,
        description="Who did it: the unit (事故发生单位) or a bureau of the reporting chain.",
    )
    bureau: DivisionCode | None = Field(
        default=None, description="With subject 'bureau': the region code of the bureau."
    )
    basis: Text = Field(description="认定依据: the facts found and how they were verified.")

    @model_validator(mode="after")
    def _bureau_with_its_subject(self) -> Self:
        if (self.subject == Subject.BUREAU) != (self.bureau is not None):
            raise ValueError(_("give bureau (a region code) exactly when subject is 'bureau'"))
        return self


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FindingRecorded(Event):
    """The accident's place and time as the recording node held them, for its area and month."""

    NAME = "accident.finding_recorded/1"
    accident_id: str
    finding: str
    subject: str
    bureau: str | None
    basis: str
    division: str
    occurred_at: int
    tier: str
    region: str

    def apply(self, agg: Finding) -> None:
        agg.facts = self.payload()


@dataclass(frozen=True, kw_only=True)
class FindingVoided(Voided):
    NAME = "accident.finding_voided/1"


# -- aggregate --------------------------------------------------------------------------------


class Finding(Aggregate):
    KIND = "finding"

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.facts: dict[str, Any] = {}

    @classmethod
    def record(cls, cmd: RecordFinding, ctx: Context, accident: dict[str, Any]) -> Finding:
        """A finding on ``accident`` as it stands at this node: {"id", "voided", "division",
        "occurred_at", ...} (the application's ``accident`` fact)."""
        if accident["id"] != str(cmd.accident_id):
            raise Invalid.field(
                "accident_id",
                _(
                    "{id} is not the accident given ({given})",
                    id=str(cmd.accident_id),
                    given=accident["id"],
                ),
            )
        which = _("accident {id}", id=accident["id"])
        division = accident["division"]
        if ctx.tier not in CHAIN:
            raise Refused(
                _(
                    "a {tier} node is no bureau of the reporting chain: findings are made by the "
                    "county, city, province or national bureau",
                    tier=tier_label(ctx.tier),
                )
            )
        if not in_subtree(ctx.region, division):
            raise Refused(
                _(
                    "{which} happened in {division}, outside this node's area ({region}): a "
                    "finding is made by a bureau whose area holds the place of the accident",
                    which=which,
                    division=division,
                    region=ctx.region,
                )
            )
        if accident["voided"]:
            raise Refused(_("{which} was voided: a voided record takes no finding", which=which))
        if cmd.bureau is not None:
            if cmd.bureau not in chain(division):
                raise Refused(
                    _(
                        "bureau {bureau} is not on the reporting chain of {which} ({chain})",
                        bureau=cmd.bureau,
                        which=which,
                        chain=" → ".join(chain(division)),
                    )
                )
            if cmd.bureau == ctx.region or not in_subtree(ctx.region, cmd.bureau):
                raise Refused(
                    _(
                        "a finding against bureau {bureau}'s own report is made by a tier above "
                        "it (493号令 Art. 39), and this node is {region}",
                        bureau=cmd.bureau,
                        region=ctx.region,
                    )
                )
        return cls.start(
            ctx.new_id(),
            FindingRecorded,
            ctx,
            accident_id=accident["id"],
            finding=cmd.finding.value,
            subject=cmd.subject.value,
            bureau=cmd.bureau,
            basis=cmd.basis,
            division=division,
            occurred_at=accident["occurred_at"],
            tier=ctx.tier,
            region=ctx.region,
        )

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self.ensure_live()
        self._trigger(FindingVoided, ctx, reason=cmd.reason)

    def state(self) -> dict[str, Any]:
        f = self.facts
        return {
            **f,
            "occurred_at": iso(f["occurred_at"]),
            "finding_label": FindingKind(f["finding"]).label,
            "article": article(f["finding"], f["subject"]),
        }


FindingRecorded.CREATES = Finding
