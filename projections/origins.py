"""Origins: per origin, how many of its events this node holds (its last sequence, as each
origin's events arrive in order and whole), when it last recorded, and how many were of types
this node does not know or lacked fields their type requires (stored and counted, never
dropped)."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlite_utils

from projections.base import LogEvent, Projection


class Origins(Projection):
    name = "origins"
    takes_all = True
    tables: ClassVar[dict[str, dict[str, Any]]] = {
        "origins": {
            "columns": {"origin": str, "events": int, "last_at": int, "unknown": int},
            "pk": "origin",
        }
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        rows = self.load(db, "origins", "origin", (e.origin for e in events))
        for e in events:
            row = rows.setdefault(
                e.origin, {"origin": e.origin, "events": 0, "last_at": 0, "unknown": 0}
            )
            row["events"] += 1
            row["last_at"] = max(row["last_at"], e.at)
            row["unknown"] += int(not e.valid)
        self.save(db, "origins", "origin", rows.values())
