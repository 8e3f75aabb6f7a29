"""Accidents: the register (one row per accident as it stands) and its investigations.
Statistics by grade × region × industry × month are queries over the register."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlite_utils

from domain.grading import UNIT_REPORT_DEADLINE_MS
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


class Accidents(Projection):
    name = "accidents"
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
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        mine = [e for e in events if e.type.startswith("accident.")]
        inv = [e for e in events if e.type.startswith("investigation.")]
        self.fold(db, "accidents", mine, _apply_accident)
        self.fold(db, "investigations", inv, _apply_investigation)


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
