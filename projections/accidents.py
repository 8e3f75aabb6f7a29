"""Accidents: the register (one row per accident as it stands), its investigations, the receipts
of its report at each tier above the reporting node, and the findings of 漏报, 谎报 and 瞒报 made
on it. Statistics by grade × region × industry × month are queries over the register.

``accident_receipts`` holds one row per receipt (per receiving node and accident): when the
report reached that tier (the receipt's signed recording time) and whether that was within
493号令 Art. 11 (every tier reports onward within 2 hours): each row is judged against the
receipt of the nearest tier below that had the report first, or the report itself (the rule is
``domain.receipt.judge_all``, where it is explained). A receipt carries the report's recording
time, and the rows of an accident's receipts are judged again together whenever one of them
arrives, so they are a function of the set of receipts held: the same whether the report or a
tier's receipt came first, later, or not (yet) at all. The ``accident-receipts`` query joins
the register for the accident's place, grade and the tiers it must reach when the report is
there.

``accident_findings`` holds one row per finding (``domain.finding``), as recorded by the bureau
that made it; the register's statistics count the accidents with a finding of each kind.

``accident_cells`` holds the statistics summed per division × month × grade × industry
(projections.cells), counted again after each batch for every cell an accident written, or one
whose receipts or findings changed, was in or is in now."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

import sqlite_utils

from domain.finding import FindingRecorded, FindingVoided
from domain.grading import UNIT_REPORT_DEADLINE_MS, Grade, must_reach
from domain.receipt import Arrival, ReceiptRecorded, expected_receipts, judge_all, origin_tier
from projections import cells
from projections.base import (
    Index,
    LogEvent,
    Projection,
    chain,
    in_order,
    month,
    name_key,
    nulls_last,
)

REGISTER_COLUMNS = {
    "id": str,
    "origin": str,
    "near_miss": int,
    "enterprise_id": str,
    "enterprise_name": str,
    "enterprise_credit_code": str,
    "enterprise_name_key": str,  # projections.base.name_key: compared with the register
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
    "must_reach_tier": str,  # Art. 10 along the division's chain (domain.grading.must_reach)
    "must_reach_region": str,
    "must_reach_steps": int,  # how many tiers above the reporting node that is (0: itself)
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
    "due_from": str,  # the region whose receipt (or report) starts this tier's 2 hours
    "due_from_at": int,  # that receipt's (or report's) time
    "deadline": int,  # due_from_at + (steps between them) × 2 hours (None when n is unknown)
    "on_time": int,  # received_at <= deadline (None when there is no deadline)
    "minutes_late": int,  # started minutes after the deadline, 0 on time
}


FINDING_COLUMNS = {
    "id": str,  # the finding's id
    "origin": str,  # the node of the bureau that made it
    "accident_id": str,
    "finding": str,  # omitted 漏报, falsified 谎报, concealed 瞒报
    "subject": str,  # unit, or bureau
    "bureau": str,  # the bureau found at fault (subject bureau)
    "basis": str,
    "division": str,  # the accident's place as the finding's node held it
    "county": str,
    "city": str,
    "province": str,
    "occurred_at": int,
    "tier": str,  # the finding node's tier and region
    "region": str,
    "recorded_at": int,
    "voided": int,
}
FINDING_EVENTS = (FindingRecorded.NAME, FindingVoided.NAME)


class Accidents(Projection):
    name = "accidents"
    replays = (
        "0002_accident_receipts",
        "0003_onward_reports_and_findings",
        "0004_registers_in_order_and_statistics_cells",
    )
    tables: ClassVar[dict[str, dict[str, Any]]] = {
        "accidents": {
            "columns": REGISTER_COLUMNS,
            "pk": "id",
            "indexes": [
                *in_order("accidents", ("occurred_at DESC", "id")),
                Index("accidents_in_order_grade", ("grade", "occurred_at DESC", "id")),
                cells.ACCIDENTS_BY_CELL,
            ],
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
            "indexes": [
                ["accident_id"],
                Index(
                    "accident_receipts_in_order",
                    ("report_recorded_at", "accident_id", nulls_last("tiers_above"), "origin"),
                ),
            ],
        },
        "accident_findings": {
            "columns": FINDING_COLUMNS,
            "pk": "id",
            "indexes": [
                # the findings of an accident of a kind (the statistics), ahead of the order
                Index("accident_findings_of", ("accident_id", "voided", "finding")),
                Index("accident_findings_in_order", ("recorded_at", "id"), "voided = 0"),
            ],
        },
        "accident_cells": cells.ACCIDENT_CELLS,
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        receipts = [e for e in events if e.type == ReceiptRecorded.NAME]
        findings = [e for e in events if e.type in FINDING_EVENTS]
        mine = [
            e
            for e in events
            if e.type.startswith("accident.")
            and e.type != ReceiptRecorded.NAME
            and e.type not in FINDING_EVENTS
        ]
        inv = [e for e in events if e.type.startswith("investigation.")]
        written = {e.aggregate for e in mine}
        before = cells.accident_keys(db, written)
        self.fold(db, "accidents", mine, _apply_accident)
        self.fold(db, "investigations", inv, _apply_investigation)
        self.fold(db, "accident_findings", findings, _apply_finding)
        if receipts:
            self.save(db, "accident_receipts", "id", _judged(db, receipts))
        # the statistics' cells these accidents were in and are in now, counted again
        counted = written | {e.payload["accident_id"] for e in receipts} | _found_on(db, findings)
        after = cells.accident_keys(db, counted)
        cells.recount_accidents(db, [*before.values(), *after.values()])


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
            enterprise_name_key=name_key(p["enterprise_name"]),
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
    row["enterprise_name_key"] = name_key(row["enterprise_name"])
    grade = Grade.from_code(row["grade"])
    reach = must_reach(grade, row["division"])
    row["must_reach_region"] = reach
    tier = origin_tier(reach)
    row["must_reach_tier"] = None if tier is None else tier.value
    row["must_reach_steps"] = len(expected_receipts(row["origin"], row["division"], grade))
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


def _apply_finding(rows: dict[str, dict[str, Any]], e: LogEvent) -> None:
    p = e.payload
    if e.type == FindingRecorded.NAME:
        rows[e.aggregate] = {
            "id": e.aggregate,
            "origin": e.origin,
            "accident_id": p["accident_id"],
            "finding": p["finding"],
            "subject": p["subject"],
            "bureau": p["bureau"],
            "basis": p["basis"],
            "occurred_at": p["occurred_at"],
            "tier": p["tier"],
            "region": p["region"],
            "recorded_at": e.at,
            "voided": 0,
            **chain(p["division"]),
        }
    elif e.aggregate in rows:
        rows[e.aggregate]["voided"] = 1


def _found_on(db: sqlite_utils.Database, findings: list[LogEvent]) -> set[str]:
    """The accidents these findings (recorded or voided) are on."""
    ids = sorted({e.aggregate for e in findings})
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            r[0]
            for r in db.execute(
                f"SELECT accident_id FROM accident_findings WHERE id IN ({marks})", chunk
            )
        )
    return found


def _judged(db: sqlite_utils.Database, receipts: list[LogEvent]) -> list[dict[str, Any]]:
    """The new receipts' rows and those already held of the same accidents, all judged again
    together (the tier below's receipt may have come after the tier above's)."""
    rows: dict[str, dict[str, Any]] = {}
    accidents = list(dict.fromkeys(e.payload["accident_id"] for e in receipts))
    for i in range(0, len(accidents), 500):
        chunk = accidents[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(
            f"SELECT * FROM accident_receipts WHERE accident_id IN ({marks})", chunk
        ):
            rows[row["id"]] = dict(row)
    for e in receipts:
        p = e.payload
        rows[e.aggregate] = {
            "id": e.aggregate,
            "accident_id": p["accident_id"],
            "origin": e.origin,
            "tier": p["tier"],
            "region": p["region"],
            "reporting_origin": p["reporting_origin"],
            "reporting_seq": p["reporting_seq"],
            "report_recorded_at": p["report_recorded_at"],
            "received_at": e.at,
        }
    reports: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows.values(), key=lambda r: r["id"]):
        reports[(row["accident_id"], row["reporting_origin"], row["report_recorded_at"])].append(
            row
        )
    for (_, reporting_origin, report_at), same in reports.items():
        arrivals = [Arrival(r["tier"], r["received_at"], r["region"]) for r in same]
        for row, j in zip(same, judge_all(reporting_origin, report_at, arrivals), strict=True):
            late = (
                None
                if j.deadline is None
                else max(0, -((j.deadline - row["received_at"]) // 60_000))
            )
            row.update(
                reporting_tier=j.reporting_tier,
                tiers_above=j.tiers_above,
                due_from=j.due_from,
                due_from_at=j.due_from_at,
                deadline=j.deadline,
                on_time=None if j.on_time is None else int(j.on_time),
                minutes_late=late,
            )
    return list(rows.values())
