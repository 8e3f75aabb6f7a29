"""Sensors: sites and points (with each point's latest 5-minute summary), the history of alarms,
power cuts, fan cuts and sensor faults with durations (the active ones are those not yet ended),
and the summaries (whose points carry the count of faulty readings)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import sqlite_utils

from projections.base import Index, LogEvent, Projection, chain

EXCURSIONS = {
    "sensor.alarm_raised/1": ("alarm", True),
    "sensor.alarm_cleared/1": ("alarm", False),
    "sensor.power_cut/1": ("power_cut", True),
    "sensor.power_restored/1": ("power_cut", False),
    "sensor.fan_cut/1": ("fan_cut", True),
    "sensor.fan_restored/1": ("fan_cut", False),
    "sensor.fault_detected/1": ("fault", True),  # its threshold: the end of the range passed
    "sensor.fault_cleared/1": ("fault", False),
}


class Sensors(Projection):
    name = "sensors"
    reindexes = ("0002_history_in_time_order",)
    tables: ClassVar[dict[str, dict[str, Any]]] = {
        "sites": {
            "columns": {
                "id": str,
                "origin": str,
                "site_code": str,
                "name": str,
                "site_type": str,
                "division": str,
                "county": str,
                "city": str,
                "province": str,
                "voided": int,
            },
            "pk": "id",
        },
        "points": {
            "columns": {
                "key": str,
                "site_id": str,
                "point": str,
                "sensor_type": str,
                "location": str,
                "unit": str,
                "scale": int,
                "thresholds": str,
                "retired": int,
                "latest_window": int,
                "latest_count": int,
                "latest_min": int,
                "latest_mean": int,
                "latest_max": int,
            },
            "pk": "key",
            "indexes": [["site_id"]],
        },
        "excursions": {
            "columns": {
                "key": str,
                "site_id": str,
                "point": str,
                "kind": str,
                "started_at": int,
                "start_value": int,
                "threshold": int,
                "ended_at": int,
                "end_value": int,
                "duration_ms": int,
            },
            "pk": "key",
            "indexes": [["site_id"], ["ended_at"], Index("excursions_in_order", ("started_at",))],
        },
        "summaries": {
            "columns": {
                "key": str,
                "site_id": str,
                "window_start": int,
                "window_end": int,
                "reading_count": int,
                "raw_sha256": str,
                "points": str,
            },
            "pk": "key",
            "indexes": [
                ["site_id", "window_start"],
                Index("summaries_in_order", ("window_start",)),
            ],
        },
    }

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        mine = [e for e in events if e.type.startswith("sensor.")]
        if not mine:
            return
        sites = self.load(db, "sites", "id", (e.aggregate for e in mine))
        point_keys = [f"{e.aggregate}:{e.payload['point']}" for e in mine if "point" in e.payload]
        point_keys += [  # a summary updates the latest figures of every point it covers
            f"{e.aggregate}:{stat['point']}"
            for e in mine
            if e.type == "sensor.summary_recorded/1"
            for stat in e.payload["points"]
        ]
        points = self.load(db, "points", "key", point_keys)
        open_keys = {}  # (site, point, kind) -> key of the excursion not yet ended
        wanted = {(e.aggregate, e.payload["point"]) for e in mine if e.type in EXCURSIONS}
        site_ids = sorted({site_id for site_id, _ in wanted})
        for i in range(0, len(site_ids), 500):
            chunk = site_ids[i : i + 500]
            for row in db.query(
                "SELECT key, site_id, point, kind FROM excursions WHERE ended_at IS NULL"
                f" AND site_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                if (row["site_id"], row["point"]) in wanted:
                    open_keys[(row["site_id"], row["point"], row["kind"])] = row["key"]
        excursions = self.load(db, "excursions", "key", open_keys.values())
        summaries: list[dict[str, Any]] = []
        for e in mine:
            p = e.payload
            if e.type == "sensor.site_registered/1":
                sites[e.aggregate] = {
                    "id": e.aggregate,
                    "origin": e.origin,
                    "site_code": p["site_code"],
                    "name": p["name"],
                    "site_type": p["site_type"],
                    "voided": 0,
                    **chain(p["division"]),
                }
            elif e.type == "sensor.site_corrected/1" and e.aggregate in sites:
                sites[e.aggregate].update({k: v for k, v in p["changes"].items() if k == "name"})
            elif e.type == "sensor.site_voided/1" and e.aggregate in sites:
                sites[e.aggregate]["voided"] = 1
            elif e.type == "sensor.point_registered/1":
                points[f"{e.aggregate}:{p['point']}"] = {
                    "key": f"{e.aggregate}:{p['point']}",
                    "site_id": e.aggregate,
                    "point": p["point"],
                    "sensor_type": p["sensor_type"],
                    "location": p["location"],
                    "unit": p["unit"],
                    "scale": p["scale"],
                    "thresholds": json.dumps(p["thresholds"], sort_keys=True),
                    "retired": 0,
                    "latest_window": None,
                    "latest_count": None,
                    "latest_min": None,
                    "latest_mean": None,
                    "latest_max": None,
                }
            elif e.type == "sensor.thresholds_changed/1":
                points[f"{e.aggregate}:{p['point']}"]["thresholds"] = json.dumps(
                    p["thresholds"], sort_keys=True
                )
            elif e.type == "sensor.point_retired/1":
                points[f"{e.aggregate}:{p['point']}"]["retired"] = 1
            elif e.type in EXCURSIONS:
                kind, starts = EXCURSIONS[e.type]
                slot = (e.aggregate, p["point"], kind)
                if starts:
                    key = f"{e.aggregate}:{p['point']}:{kind}:{p['t']}"
                    excursions[key] = {
                        "key": key,
                        "site_id": e.aggregate,
                        "point": p["point"],
                        "kind": kind,
                        "started_at": p["t"],
                        "start_value": p["value"],
                        "threshold": p["threshold"] if "threshold" in p else p["bound"],
                        "ended_at": None,
                        "end_value": None,
                        "duration_ms": None,
                    }
                    open_keys[slot] = key
                elif slot in open_keys:
                    row = excursions[open_keys.pop(slot)]
                    row.update(
                        ended_at=p["t"],
                        end_value=p["value"],
                        duration_ms=p["t"] - row["started_at"],
                    )
            elif e.type == "sensor.summary_recorded/1":
                summaries.append(
                    {
                        "key": f"{e.aggregate}:{p['window_start']}",
                        "site_id": e.aggregate,
                        "window_start": p["window_start"],
                        "window_end": p["window_end"],
                        "reading_count": p["reading_count"],
                        "raw_sha256": p["raw_sha256"],
                        "points": json.dumps(p["points"], sort_keys=True),
                    }
                )
                for stat in p["points"]:
                    latest = points.get(f"{e.aggregate}:{stat['point']}")
                    if latest is not None and (latest["latest_window"] or 0) <= p["window_start"]:
                        latest.update(
                            latest_window=p["window_start"],
                            latest_count=stat["count"],
                            latest_min=stat["min"],
                            latest_mean=stat["mean"],
                            latest_max=stat["max"],
                        )
        self.save(db, "sites", "id", sites.values())
        self.save(db, "points", "key", points.values())
        self.save(db, "excursions", "key", excursions.values())
        self.save(db, "summaries", "key", summaries)
