"""Accidents: the register (one row per accident as it stands), its investigations, and the
receipts of its report at each tier above the reporting node. Statistics by grade × region ×
industry × month are queries over the register.

``accident_receipts`` holds one row per receipt (per receiving node and accident): when the
report reached that tier (the receipt's signed recording time) and whether that was within
493号令 Art. 11: at the n-th tier above the reporting node the report is due by the report's own
recording time at the reporting node + n × 2 hours (county < city < province < national; the
reporting node's tier is the level of its origin id, a division code; the rule is
``domain.receipt.judge``, where it is explained). A receipt carries the report's recording time,
so each row is derived from its receipt alone and is the same whether the report is in the log
before it, after it, or not (yet) at all; the ``accident-receipts`` query joins the register for
the accident's place and grade when the report is there."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlite_utils

from domain.grading import UNIT_REPORT_DEADLINE_MS
from domain.receipt import ReceiptRecorded, judge
from projections.base import LogEvent, Projection, chain, month

REGISTER_COLUMNS = {
    "id": str,
    "origin": str,
    "near_miss": int,
    "enterprise_id": str,
    "enterprise_name": str,
    "enterprise_credit_code": str,
    "division": str,
    "county": str,
    "city": str,
    "province": str,
    "industry": str,
    "place": str,
    "occurred_at": int,
    "reported_at": int,
    "month": str,
    "grade": str,
    "deaths": int,
    "missing": int,
    "serious_injuries": int,
    "direct_loss_yuan": int,
    "late_report": int,
    "supplements": int,
    "voided": int,
}


RECEIPT_COLUMNS = {
    "id": str,  # the receipt's id
    "accident_id": str,
    "origin": str,  # the receiving node, which recorded the receipt
    "tier": str,  # the receiving node's tier and region
    "region": str,
    "reporting_origin": str,
    "reporting_seq": int,
    "reporting_tier": str,  # None when the reporting origin is not a division code
    "tiers_above": int,  # n: the receiving tier is the n-th above the reporting node
    "report_recorded_at": int,  # the report's time at the reporting node
    "received_at": int,  # the receipt's time at the receiving node
    "deadline": int,  # report_recorded_at + n × 2 hours (None when n is unknown)
    "on_time": int,  # received_at <= deadline (None when there is no deadline)
    "minutes_late": int,  # started minutes after the deadline, 0 on time
}


class Accidents(Projection):
    name = "accidents"
    replays = ("0002_accident_receipts",)
    tables: ClassVar[dict[str, dict[str, Any]]] = {
        "accidents": {
            "columns": REGISTER_COLUMNS,
            "pk": "id",
            "indexes": [["division"], ["month"], ["grade"]],
        },
        "investigations": {
            "columns": {
                "id": str,
                "origin": str,
                "accident_id": str,
                "tier": str,
                "state": str,
                "voided": int,
            },
            "pk": "id",
            "indexes": [["accident_id"]],
        },
        "accident_receipts": {
            "columns": RECEIPT_COLUMNS,
            "pk": "id",
            "indexes": [["accident_id"]],
        },
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        receipts = [e for e in events if e.type == ReceiptRecorded.NAME]
        mine = [
            e for e in events if e.type.startswith("accident.") and e.type != ReceiptRecorded.NAME
        ]
        inv = [e for e in events if e.type.startswith("investigation.")]
        self.fold(db, "accidents", mine, _apply_accident)
        self.fold(db, "investigations", inv, _apply_investigation)
        self.save(db, "accident_receipts", "id", [_receipt(e) for e in receipts])


FIGURES = ("deaths", "missing", "serious_injuries", "direct_loss_yuan")


def _apply_accident(rows: dict[str, dict[str, Any]], e: LogEvent) -> None:
    p = e.payload
    if e.type in ("accident.reported/1", "accident.near_miss_reported/1"):
        new: dict[str, Any] = {k: p.get(k, 0) for k in FIGURES}
        new.update(
            id=e.aggregate,
            origin=e.origin,
            near_miss=int(e.type != "accident.reported/1"),
            enterprise_id=p["enterprise_id"],
            enterprise_name=p["enterprise_name"],
            enterprise_credit_code=p["enterprise_credit_code"],
            industry=p["industry"],
            place=p["place"],
            occurred_at=p["occurred_at"],
            reported_at=p["reported_at"],
            grade=p["grade"],
            supplements=0,
            voided=0,
            **chain(p["division"]),
        )
        rows[e.aggregate] = _derived(new)
        return
    row = rows.get(e.aggregate)
    if row is None:
        return  # its report is not here (yet): a later rebuild will see both in order
    if e.type in ("accident.supplemented/1", "accident.corrected/1"):
        for k, v in p["changes"].items():
            if k in REGISTER_COLUMNS:
                row[k] = v
        if "division" in p["changes"]:
            row.update(chain(p["changes"]["division"]))
        row["grade"] = p["grade"]
        if e.type == "accident.supplemented/1":
            row["supplements"] += 1
        _derived(row)
    elif e.type == "accident.voided/1":
        row["voided"] = 1


def _derived(row: dict[str, Any]) -> dict[str, Any]:
    row["month"] = month(row["occurred_at"])
    row["late_report"] = int(row["reported_at"] > row["occurred_at"] + UNIT_REPORT_DEADLINE_MS)
    return row


STATES = {
    "investigation.opened/1": "opened",
    "investigation.report_submitted/1": "report_submitted",
    "investigation.replied/1": "replied",
    "investigation.closed/1": "closed",
}


def _apply_investigation(rows: dict[str, dict[str, Any]], e: LogEvent) -> None:
    if e.type == "investigation.opened/1":
        rows[e.aggregate] = {
            "id": e.aggregate,
            "origin": e.origin,
            "accident_id": e.payload["accident_id"],
            "tier": e.payload["tier"],
            "state": "opened",
            "voided": 0,
        }
        return
    row = rows.get(e.aggregate)
    if row is None:
        return
    if e.type in STATES:
        row["state"] = STATES[e.type]
    elif e.type == "investigation.voided/1":
        row["voided"] = 1


def _receipt(e: LogEvent) -> dict[str, Any]:
    p = e.payload
    j = judge(p["reporting_origin"], p["report_recorded_at"], p["tier"], e.at)
    late = None if j.deadline is None else max(0, -((j.deadline - e.at) // 60_000))
    return {
        "id": e.aggregate,
        "accident_id": p["accident_id"],
        "origin": e.origin,
        "tier": p["tier"],
        "region": p["region"],
        "reporting_origin": p["reporting_origin"],
        "reporting_seq": p["reporting_seq"],
        "reporting_tier": j.reporting_tier,
        "tiers_above": j.tiers_above,
        "report_recorded_at": p["report_recorded_at"],
        "received_at": e.at,
        "deadline": j.deadline,
        "on_time": None if j.on_time is None else int(j.on_time),
        "minutes_late": late,
    }
