"""Licences and the enterprises they belong to: a licence register with status and expiry, and
the enterprise register, so that 'needs a licence, holds which' is a query (with ``as_of``)."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlite_utils

from projections.base import Index, LogEvent, Projection, chain, in_order, name_key, nulls_last

LICENCE_COLUMNS = {
    "id": str,
    "origin": str,
    "enterprise_id": str,
    "enterprise_name": str,
    "industry": str,
    "division": str,
    "county": str,
    "city": str,
    "province": str,
    "status": str,
    "number": str,
    "valid_from": int,
    "valid_until": int,
    "applied_at": int,
    "voided": int,
}
ENTERPRISE_COLUMNS = {
    "id": str,
    "origin": str,
    "name": str,
    "name_key": str,  # projections.base.name_key: what the cross-record checks compare
    "credit_code": str,
    "industry": str,
    "division": str,
    "county": str,
    "city": str,
    "province": str,
    "closed": int,
    "voided": int,
}
STATUS = {
    "licence.accepted/1": "accepted",
    "licence.refused/1": "refused",
    "licence.suspended/1": "suspended",
    "licence.reinstated/1": "issued",
    "licence.revoked/1": "revoked",
    "licence.cancelled/1": "cancelled",
    "licence.expired/1": "expired",
}


class Licences(Projection):
    name = "licences"
    replays = ("0002_enterprise_name_key",)
    reindexes = ("0003_register_in_order",)
    tables: ClassVar[dict[str, dict[str, Any]]] = {
        "licences": {
            "columns": LICENCE_COLUMNS,
            "pk": "id",
            "indexes": [
                # an enterprise's licences, latest last (unlicensed), ahead of the register's
                Index("licences_of", ("enterprise_id", "voided", "applied_at", "id")),
                # the register by expiry, those without one (not issued) last
                *in_order("licences", ("voided", nulls_last("valid_until"), "id"), "voided = 0"),
            ],
        },
        "enterprises": {
            "columns": ENTERPRISE_COLUMNS,
            "pk": "id",
            "indexes": [
                # one credit code's registrations by division (duplicate codes, exceptions)
                Index("enterprises_by_code", ("credit_code", "division", "id")),
                # the open enterprises by division (unlicensed)
                *in_order(
                    "enterprises",
                    ("closed", "voided", "division", "id"),
                    "closed = 0 AND voided = 0",
                ),
            ],
        },
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        lic = [e for e in events if e.type.startswith("licence.")]
        ent = [e for e in events if e.type.startswith("enterprise.")]
        self.fold(db, "licences", lic, _licence)
        self.fold(db, "enterprises", ent, _enterprise)


def _licence(rows: dict[str, dict[str, Any]], e: LogEvent) -> None:
    p = e.payload
    if e.type == "licence.applied/1":
        rows[e.aggregate] = {
            "id": e.aggregate,
            "origin": e.origin,
            "enterprise_id": p["enterprise_id"],
            "enterprise_name": p["enterprise_name"],
            "industry": p["industry"],
            "status": "applied",
            "number": None,
            "valid_from": None,
            "valid_until": None,
            "applied_at": e.at,
            "voided": 0,
            **chain(p["division"]),
        }
        return
    row = rows.get(e.aggregate)
    if row is None:
        return
    if e.type == "licence.issued/1":
        row.update(
            status="issued",
            number=p["number"],
            valid_from=p["valid_from"],
            valid_until=p["valid_until"],
        )
    elif e.type == "licence.extended/1":
        row.update(valid_from=p["valid_from"], valid_until=p["valid_until"])
    elif e.type in STATUS:
        row["status"] = STATUS[e.type]
    elif e.type == "licence.corrected/1":
        row.update({k: v for k, v in p["changes"].items() if k in LICENCE_COLUMNS})
        if "division" in p["changes"]:
            row.update(chain(p["changes"]["division"]))
    elif e.type == "licence.voided/1":
        row["voided"] = 1


def _enterprise(rows: dict[str, dict[str, Any]], e: LogEvent) -> None:
    p = e.payload
    if e.type == "enterprise.registered/1":
        rows[e.aggregate] = {
            "id": e.aggregate,
            "origin": e.origin,
            "name": p["name"],
            "name_key": name_key(p["name"]),
            "credit_code": p["credit_code"],
            "industry": p["industry"],
            "closed": 0,
            "voided": 0,
            **chain(p["division"]),
        }
        return
    row = rows.get(e.aggregate)
    if row is None:
        return
    if e.type == "enterprise.corrected/1":
        row.update({k: v for k, v in p["changes"].items() if k in ENTERPRISE_COLUMNS})
        row["name_key"] = name_key(row["name"])
        if "division" in p["changes"]:
            row.update(chain(p["changes"]["division"]))
    elif e.type == "enterprise.closed/1":
        row["closed"] = 1
    elif e.type == "enterprise.voided/1":
        row["voided"] = 1
