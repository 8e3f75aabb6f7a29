"""Receipts of accident reports (docs/architecture.md §6 "Receipts"). When a tier's node applies
another origin's accident report that came up from below, it records its own receipt, signed, in
its own log: the receipt belongs to the receiving node (one writing origin per record) and refers
to the report by the accident's id and the reporting origin's envelope sequence. Receipts
replicate upward like every event, so the national view holds every tier against 493号令
Art. 11 (逐级上报, 每级上报的时间不得超过2小时) with signed times.

One receipt per receiving origin and accident: its id derives from both (uuid5), so a report
applied again, or an import retried, never records a second one.

The chain (docs/domain.md §1.2): a report climbs the tiers of the reporting node's division
chain (``domain.divisions.chain``), its own bureau first, up to the national centre (130102 →
130100 → 130000 → 000000); a county-level division with no city above it (济源 419001, a
municipality's districts) has no city in it, a prefecture-level city without counties (东莞
441900) is its own first tier. The n-th tier above the reporting node is its n-th region in
that chain. The reporting node's tier is the level of its origin id, which is its division code
at creation (docs/architecture.md §3; 000000 is the national centre). An origin that is not a
division code has no chain: its receipts are kept and shown, without a deadline.

The rule (``judge_all``, one place for the record's view and the register): each tier's onward
report is due 2 hours after the report reached that tier. A receipt at the n-th tier is held
against the receipt of the nearest tier below it that had the report first (recorded at or
before it), the m-th, and is due by that receipt's time + (n − m) × 2 hours; with no such
receipt, against the report itself (m = 0: its recording time at the reporting node, which the
receipt carries). So a tier skipped (越级上报, or a receipt not held here) keeps its 2 hours, and
a fast tier leaves nothing to the next. A receipt recorded at or before the deadline is on time.

What the report must reach (Art. 10, ``domain.grading.must_reach``) follows the chain too: 一般
the city, 较大 the province, 重大 and 特别重大 the national centre; where the chain has no city,
the next tier up (a 济源 一般 accident must reach the province); a city without counties is its
own city (a 东莞 一般 accident has reached the tier it must reach when the city records it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from domain.base import HOUR_MS, Aggregate, Command, Context, Event, iso
from domain.codes import (
    CHAIN_TIERS,
    NATIONAL_REGION,
    Tier,
    check_division_shape,
    division_level,
    tier_label,
)
from domain.divisions import chain
from domain.errors import Refused
from domain.grading import Grade, must_reach
from domain.i18n import _

# uuid5 namespace for receipt ids: one receipt per (receiving origin, accident).
RECEIPT_NAMESPACE = uuid.UUID("5a2f6c1e-8b3d-5f47-9e0a-3c6d8f1b2e74")

TIER_MS = 2 * HOUR_MS  # Art. 11: 每级上报的时间不得超过2小时
# The tiers of the reporting chain, upward. A division's own chain may lack one (419001 has no
# city): count tiers with ``report_chain``, order them with this.
CHAIN = CHAIN_TIERS


def receipt_id(origin: str, accident_id: uuid.UUID | str) -> uuid.UUID:
    """The id of the receipt of ``accident_id``'s report recorded by the node ``origin``."""
    return uuid.uuid5(RECEIPT_NAMESPACE, f"{origin}:{uuid.UUID(str(accident_id))}")


def origin_tier(origin: str) -> Tier | None:
    """The tier of a node named by its origin id (its division code), None if not a code. By
    the code's shape: a receipt is judged alike at every node, whatever codes each declared."""
    if origin == NATIONAL_REGION:
        return Tier.NATIONAL
    try:
        return division_level(check_division_shape(origin))
    except ValueError:
        return None


def report_chain(origin: str) -> list[str] | None:
    """The regions a report recorded by the node ``origin`` climbs, its own first, up to the
    national centre (``domain.divisions.chain``); None if ``origin`` is not a division code."""
    if origin == NATIONAL_REGION:
        return [NATIONAL_REGION]
    if origin_tier(origin) is None:
        return None
    return chain(origin)


def tiers_above(reporting_origin: str, tier: str) -> int | None:
    """How many tiers of the reporting node's chain a report climbs to the node of ``tier``
    (1: the next tier up; a tier missing from the chain is not counted); None when the
    reporting node has no chain or ``tier`` is not above it in its chain."""
    regions = report_chain(reporting_origin)
    if regions is None:
        return None
    tiers = [origin_tier(r) for r in regions]
    return tiers.index(Tier(tier)) if tier in tiers[1:] else None


def expected_receipts(reporting_origin: str, division: str, grade: Grade) -> list[str]:
    """The regions above the reporting node that must receive the report (Art. 10), lowest
    first: its chain up to ``must_reach``; none when the reporting node is that tier itself
    or above it (a city that recorded a 一般 accident)."""
    regions = report_chain(reporting_origin)
    target = must_reach(grade, division)
    if regions is None or target not in regions:
        return []
    return regions[1 : regions.index(target) + 1]


@dataclass(frozen=True)
class Arrival:
    """A report's arrival at a tier, as the rule needs it: the receipt's tier, its time, and
    the receiving node's region."""

    tier: str
    received_at: int
    region: str = ""


@dataclass(frozen=True)
class Judgement:
    reporting_tier: str | None
    tiers_above: int | None
    due_from: str | None  # the region whose receipt (or report) starts this tier's clock
    due_from_at: int | None  # ms: that receipt's (or report's) time
    deadline: int | None  # ms; None when the tiers are unknown
    on_time: bool | None


def judge_all(
    reporting_origin: str, report_at: int, arrivals: Sequence[Arrival]
) -> list[Judgement]:
    """Each arrival of one report held against Art. 11 (module docstring): due 2 hours per
    tier after the nearest tier below that had the report first, or after the report."""
    reporting = origin_tier(reporting_origin)
    known = reporting.value if reporting is not None else None
    steps = [tiers_above(reporting_origin, a.tier) for a in arrivals]
    judged = []
    for arrival, n in zip(arrivals, steps, strict=True):
        if n is None:
            judged.append(Judgement(known, None, None, None, None, None))
            continue
        below = [
            (m, -b.received_at, b.region)
            for b, m in zip(arrivals, steps, strict=True)
            if m is not None and m < n and b.received_at <= arrival.received_at
        ]
        m, at, region = (0, -report_at, reporting_origin) if not below else max(below)
        deadline = -at + (n - m) * TIER_MS
        judged.append(Judgement(known, n, region, -at, deadline, arrival.received_at <= deadline))
    return judged


def judge(reporting_origin: str, report_at: int, tier: str, received_at: int) -> Judgement:
    """One arrival held against the report alone (no receipt of a tier below known)."""
    (judgement,) = judge_all(reporting_origin, report_at, [Arrival(tier, received_at)])
    return judgement


# -- command ----------------------------------------------------------------------------------


class RecordReceipt(Command):
    """Not a user's command: the node records it when it applies a report from below."""

    accident_id: uuid.UUID = Field(description="The accident reported (its record's id).")
    reporting_origin: str = Field(min_length=1, max_length=32, description="Who reported it.")
    reporting_seq: int = Field(ge=1, description="The report's envelope sequence number.")
    report_recorded_at: int = Field(
        ge=0, description="When the reporting node recorded the report (ms, its signed time)."
    )


# -- event ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReceiptRecorded(Event):
    """The receiving node's receipt: the report it applied, and the node's tier and region.
    The receipt time is the event's ``recorded_at`` (the receiving node's clock)."""

    NAME = "accident.receipt_recorded/1"
    accident_id: str
    reporting_origin: str
    reporting_seq: int
    report_recorded_at: int
    tier: str
    region: str

    def apply(self, agg: Receipt) -> None:
        agg.accident_id = self.accident_id
        agg.reporting_origin = self.reporting_origin
        agg.reporting_seq = self.reporting_seq
        agg.report_recorded_at = self.report_recorded_at
        agg.tier = self.tier
        agg.region = self.region
        agg.received_at = self.recorded_at


# -- aggregate --------------------------------------------------------------------------------


class Receipt(Aggregate):
    KIND = "receipt"
    DERIVED_ID = True

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.accident_id = ""
        self.reporting_origin = ""
        self.reporting_seq = 0
        self.report_recorded_at = 0
        self.tier = ""
        self.region = ""
        self.received_at = 0

    @classmethod
    def record(cls, cmd: RecordReceipt, ctx: Context) -> Receipt:
        """This node's receipt of a report another origin recorded (ctx: the receiving node)."""
        if ctx.tier not in CHAIN:
            raise Refused(
                _(
                    "a {tier} node is no tier of the reporting chain (county, city, province, "
                    "national): it replays the receipts the tiers recorded and records none",
                    tier=tier_label(ctx.tier),
                )
            )
        if cmd.reporting_origin == ctx.actor.node:
            raise Refused(
                _(
                    "accident {id} was reported by this node ({node}): a node records receipts "
                    "of reports that reach it from other origins",
                    id=str(cmd.accident_id),
                    node=ctx.actor.node,
                )
            )
        return cls.start(
            receipt_id(ctx.actor.node, cmd.accident_id),
            ReceiptRecorded,
            ctx,
            accident_id=str(cmd.accident_id),
            reporting_origin=cmd.reporting_origin,
            reporting_seq=cmd.reporting_seq,
            report_recorded_at=cmd.report_recorded_at,
            tier=ctx.tier,
            region=ctx.region,
        )

    def state(self) -> dict[str, Any]:
        """The receipt alone knows the clock of the first tier above the reporting node (from
        the report); a higher tier's clock starts at the receipt of the tier below, which only
        the register holds (the ``accident-receipts`` query): here it names that tier."""
        j = judge(self.reporting_origin, self.report_recorded_at, self.tier, self.received_at)
        first = j.tiers_above == 1
        regions = report_chain(self.reporting_origin)
        below = regions[j.tiers_above - 1] if regions and j.tiers_above else None
        return {
            "accident_id": self.accident_id,
            "reporting_origin": self.reporting_origin,
            "reporting_seq": self.reporting_seq,
            "reporting_tier": j.reporting_tier,
            "report_recorded_at": iso(self.report_recorded_at),
            "tier": self.tier,
            "region": self.region,
            "received_at": iso(self.received_at),
            "tiers_above": j.tiers_above,
            "due_from": below,
            "deadline": iso(j.deadline) if first else None,
            "on_time": j.on_time if first else None,
        }


ReceiptRecorded.CREATES = Receipt
