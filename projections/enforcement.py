"""Enforcement: one row per case as it stands, and the 执法统计 indicators (docs/domain.md §3.4)
summed per division and month of the inspection (``enforcement_cells``, projections.cells) for
the statistics by region and month; the open cases with their deadlines are a query."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import sqlite_utils

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

CASE_COLUMNS = {
    "id": str,
    "origin": str,
    "enterprise_id": str,
    "enterprise_credit_code": str,
    "enterprise_name": str,
    "enterprise_name_key": str,  # projections.base.name_key: compared with the register
    "division": str,
    "county": str,
    "city": str,
    "province": str,
    "started_at": int,
    "month": str,
    "stage": str,
    "hazards_general": int,
    "hazards_major": int,
    "rectified_general": int,
    "rectified_major": int,
    "hazards": str,
    "order_deadline": int,
    "order_hazards": str,
    "requested_deadline": int,
    "filed": int,
    "fines_yuan": int,
    "warnings": int,
    "shutdown": int,
    "licence_suspensions": int,  # decided in this case (by the bureau that issued it)
    "licence_revocations": int,
    "suspensions_recommended": int,  # recommended to the issuing bureau
    "revocations_recommended": int,
    "closure": int,
    "closed": int,
    "outcome": str,
    "transferred": int,
    "voided": int,
}

ZERO = {k: 0 for k, t in CASE_COLUMNS.items() if t is int}


class Enforcement(Projection):
    name = "enforcement"
    replays = (
        "0002_licence_recommendations_apart",
        "0003_enterprise_checks",
        "0004_open_cases_in_order_and_statistics_cells",
    )
    tables: ClassVar[dict[str, dict[str, Any]]] = {
        "cases": {
            "columns": CASE_COLUMNS,
            "pk": "id",
            "indexes": [
                ["enterprise_id"],
                # the open cases by deadline, those without one last
                *in_order(
                    "cases",
                    ("closed", "voided", nulls_last("order_deadline"), "id"),
                    "closed = 0 AND voided = 0",
                ),
                cells.CASES_BY_CELL,
                # statistics over a period that is not whole months read its cases only
                Index("cases_by_start", ("started_at",), "voided = 0"),
            ],
        },
        "enforcement_cells": cells.CASE_CELLS,
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        mine = [e for e in events if e.type.startswith("case.")]
        if not mine:
            return
        rows = self.load(db, "cases", "id", (e.aggregate for e in mine))
        before = [cells.case_key(r) for r in rows.values()]  # the cells they were in
        hazards = {k: json.loads(r["hazards"]) for k, r in rows.items()}  # decoded once a batch
        for e in mine:
            _apply(rows, hazards, e)
        for k, row in rows.items():
            _count_hazards(row, hazards[k])
        self.save(db, "cases", "id", rows.values())
        cells.recount_cases(db, [*before, *map(cells.case_key, rows.values())])


def _apply(
    rows: dict[str, dict[str, Any]], all_hazards: dict[str, dict[str, Any]], e: LogEvent
) -> None:
    p = e.payload
    if e.type == "case.inspection_opened/1":
        rows[e.aggregate] = ZERO | {
            "id": e.aggregate,
            "origin": e.origin,
            "enterprise_id": p["enterprise_id"],
            "enterprise_credit_code": p["enterprise_credit_code"],
            "enterprise_name": p["enterprise_name"],
            "enterprise_name_key": name_key(p["enterprise_name"]),
            "started_at": p["started_at"],
            "month": month(p["started_at"]),
            "stage": "inspecting",
            "hazards": "{}",
            "order_deadline": None,
            "order_hazards": "[]",
            "requested_deadline": None,
            "outcome": None,
            **chain(p["division"]),
        }
        all_hazards[e.aggregate] = {}
        return
    row = rows.get(e.aggregate)
    if row is None:
        return
    hazards = all_hazards[e.aggregate]
    kind = e.type.removeprefix("case.").removesuffix("/1")
    if kind == "hazard_recorded":
        hazards[str(p["number"])] = {
            "class": p["hazard_class"],
            "rectified": p["rectified_on_site"],
        }
    elif kind == "measure_taken" and p["measure"] == "suspend_production":
        row["shutdown"] = 1
    elif kind == "rectification_ordered":
        row.update(
            stage="rectifying", order_deadline=p["deadline"], order_hazards=json.dumps(p["hazards"])
        )
    elif kind == "extension_requested":
        row["requested_deadline"] = p["new_deadline"]
    elif kind == "extension_decided":
        if p["granted"]:
            row["order_deadline"] = row["requested_deadline"]
        row["requested_deadline"] = None
    elif kind == "reinspected":
        if p["passed"]:
            for n in json.loads(row["order_hazards"]):
                hazards.get(str(n), {})["rectified"] = True
        row["stage"] = "rectified" if p["passed"] else "rectification_failed"
    elif kind == "filed":
        row.update(filed=1, stage="filed")
    elif kind == "penalty_notified":
        row["stage"] = "notified"
    elif kind == "penalty_decided":
        row["stage"] = "decided"
        for item in p["penalties"]:
            if item["type"] == "fine":
                row["fines_yuan"] += item["amount_yuan"] or 0
            elif item["type"] == "warning":
                row["warnings"] += 1
            elif item["type"] == "suspend_production":
                row["shutdown"] = 1
            elif item["type"] == "closure":
                row["closure"] = 1
            elif item["type"] == "suspend_licence":
                row["licence_suspensions"] += 1
            elif item["type"] == "revoke_licence":
                row["licence_revocations"] += 1
    elif kind == "decision_served":
        row["stage"] = "served"
    elif kind == "penalty_executed":
        row["stage"] = "executed"
    elif kind == "licence_action_recommended":
        key = "suspensions_recommended" if p["action"] == "suspend" else "revocations_recommended"
        row[key] += 1
    elif kind == "transferred":
        row["transferred"] = 1
    elif kind == "closed":
        row.update(closed=1, stage="closed", outcome=p["outcome"])
    elif kind == "corrected":
        row.update({k: v for k, v in p["changes"].items() if k in CASE_COLUMNS})
        row["enterprise_name_key"] = name_key(row["enterprise_name"])
    elif kind == "voided":
        row["voided"] = 1


def _count_hazards(row: dict[str, Any], hazards: dict[str, Any]) -> None:
    row["hazards"] = json.dumps(hazards, sort_keys=True)
    for cls in ("general", "major"):
        found = [h for h in hazards.values() if h["class"] == cls]
        row[f"hazards_{cls}"] = len(found)
        row[f"rectified_{cls}"] = sum(1 for h in found if h["rectified"])
