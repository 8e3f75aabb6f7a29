"""Receipts of accident reports (docs/architecture.md §6 "Receipts"). When a tier's node applies
another origin's accident report that came up from below, it records its own receipt, signed, in
its own log: the receipt belongs to the receiving node (one writing origin per record) and refers
to the report by the accident's id and the reporting origin's envelope sequence. Receipts
replicate upward like every event, so the national view holds every tier against 493号令
Art. 11 (逐级上报, no more than 2 hours per tier) with signed times.

One receipt per receiving origin and accident: its id derives from both (uuid5), so a report
applied again, or an import retried, never records a second one.

The rule (one place, used by the record's view and by the accident register): a report recorded
at T by the reporting node is due at the n-th tier above it (county < city < province <
national) by T + n × 2 hours, and a receipt recorded at or before that instant is on time.
T is the report event's own recording time (its envelope's signed time), which the receipt
carries so that it can be judged without the report. The reporting node's tier is the level of
its origin id, which is its division code at creation (docs/architecture.md §3; 000000 is the
national centre): PP0000 a province, PPCC00 a city, any other code a county. A county directly
under its province (PP90XX, no city above it) has the province as its first tier above. An
origin that is not a division code has no known tier: its receipts are kept and shown, without a
deadline.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from domain.base import HOUR_MS, Aggregate, Command, Context, Event, iso
from domain.codes import NATIONAL_REGION, Tier, check_division, division_level, region_chain
from domain.errors import Refused

# uuid5 namespace for receipt ids: one receipt per (receiving origin, accident).
RECEIPT_NAMESPACE = uuid.UUID("5a2f6c1e-8b3d-5f47-9e0a-3c6d8f1b2e74")

TIER_MS = 2 * HOUR_MS  # Art. 11: 每级上报的时间不得超过2小时
CHAIN = (Tier.COUNTY, Tier.CITY, Tier.PROVINCE, Tier.NATIONAL)  # the reporting chain, upward


def receipt_id(origin: str, accident_id: uuid.UUID | str) -> uuid.UUID:
    """The id of the receipt of ``accident_id``'s report recorded by the node ``origin``."""
    return uuid.uuid5(RECEIPT_NAMESPACE, f"{origin}:{uuid.UUID(str(accident_id))}")


def origin_tier(origin: str) -> Tier | None:
    """The tier of a node named by its origin id (its division code), None if not a code."""
    if origin == NATIONAL_REGION:
        return Tier.NATIONAL
    try:
        return division_level(check_division(origin))
    except ValueError:
        return None


def tiers_above(reporting_origin: str, tier: str) -> int | None:
    """How many tiers of the chain a report climbs from the reporting node to a node of
    ``tier`` (1: the next tier up); None when either tier is unknown or ``tier`` is not above."""
    reporting = origin_tier(reporting_origin)
    if reporting is None or tier not in CHAIN:
        return None
    steps = CHAIN[CHAIN.index(reporting) + 1 : CHAIN.index(Tier(tier)) + 1]
    if reporting == Tier.COUNTY and region_chain(reporting_origin)["city"] is None:
        steps = tuple(t for t in steps if t != Tier.CITY)  # PP90XX: no city above the county
    return len(steps) or None


@dataclass(frozen=True)
class Judgement:
    reporting_tier: str | None
    tiers_above: int | None
    deadline: int | None  # ms; None when the tiers are unknown
    on_time: bool | None


def judge(reporting_origin: str, report_at: int, tier: str, received_at: int) -> Judgement:
    """A receipt held against Art. 11: due by ``report_at`` + n × 2 hours at the n-th tier."""
    reporting = origin_tier(reporting_origin)
    known = reporting.value if reporting is not None else None
    n = tiers_above(reporting_origin, tier)
    if n is None:
        return Judgement(known, None, None, None)
    deadline = report_at + n * TIER_MS
    return Judgement(known, n, deadline, received_at <= deadline)


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
                f"a {ctx.tier} node is no tier of the reporting chain (county, city, province, "
                "national): it replays the receipts the tiers recorded and records none"
            )
        if cmd.reporting_origin == ctx.actor.node:
            raise Refused(
                f"accident {cmd.accident_id} was reported by this node ({ctx.actor.node}): a "
                "node records receipts of reports that reach it from other origins"
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
        j = judge(self.reporting_origin, self.report_recorded_at, self.tier, self.received_at)
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
            "deadline": iso(j.deadline),
            "on_time": j.on_time,
        }


ReceiptRecorded.CREATES = Receipt
