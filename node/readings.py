"""The local raw readings store: append-only SQLite beside the event log (never part of it),
kept for a retention period (AQ 6201: real-time values at least 3 months). Ids only grow, so
"everything after id N" is exact even after old rows are pruned."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from domain.sensors.readings import WINDOW_MS, Reading

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    point TEXT NOT NULL,
    t INTEGER NOT NULL,
    value INTEGER NOT NULL,
    status INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS readings_once ON readings (site, point, t);
CREATE INDEX IF NOT EXISTS readings_site_t ON readings (site, t);
CREATE INDEX IF NOT EXISTS readings_site_id ON readings (site, id);
CREATE INDEX IF NOT EXISTS readings_t ON readings (t);
CREATE TABLE IF NOT EXISTS derived (site TEXT PRIMARY KEY, through_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS latest (
    site TEXT NOT NULL, point TEXT NOT NULL, t INTEGER NOT NULL, PRIMARY KEY (site, point)
);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL
);
"""


class ReadingsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def append(self, site: str, rows: Iterable[tuple[str, int, int, int]], received_at: int) -> int:
        """Store a batch in one transaction; returns how many rows were new (a reading of a
        point at a time already stored, e.g. a retried batch, is kept once)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.executemany(
                    "INSERT OR IGNORE INTO readings (site, point, t, value, status, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(site, p, t, v, s, received_at) for p, t, v, s in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cursor.rowcount

    def _select(self, sql: str, *args: object) -> list[Reading]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Reading(*row) for row in rows]

    def after(self, site: str, after_id: int) -> list[Reading]:
        return self._select(
            "SELECT id, point, t, value, status FROM readings"
            " WHERE site = ? AND id > ? ORDER BY id",
            site,
            after_id,
        )

    def window(self, site: str, start: int) -> list[Reading]:
        """The readings of one 5-minute window, in store order: what its summary covers."""
        return self._select(
            "SELECT id, point, t, value, status FROM readings"
            " WHERE site = ? AND t >= ? AND t < ? ORDER BY id",
            site,
            start,
            start + WINDOW_MS,
        )

    def windows(self, site: str, from_t: int, before_t: int) -> list[int]:
        """Starts of the windows with readings between two times."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT t - t % ? FROM readings WHERE site = ? AND t >= ? AND t < ?"
                " ORDER BY 1",
                (WINDOW_MS, site, from_t, before_t),
            ).fetchall()
        return [r[0] for r in rows]

    def marked(self, site: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT through_id FROM derived WHERE site = ?", (site,)
            ).fetchone()
        return int(row[0]) if row else 0

    def mark(self, site: str, through_id: int, latest: dict[str, int]) -> None:
        """Record what has been derived: readings up to an id, and each point's latest time."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO derived (site, through_id) VALUES (?, ?)"
                " ON CONFLICT (site) DO UPDATE SET through_id = excluded.through_id",
                (site, through_id),
            )
            self._db.executemany(
                "INSERT INTO latest (site, point, t) VALUES (?, ?, ?)"
                " ON CONFLICT (site, point) DO UPDATE SET t = excluded.t",
                [(site, p, t) for p, t in latest.items()],
            )
            self._db.execute("COMMIT")

    def latest(self, site: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT point, t FROM latest WHERE site = ?", (site,)
            ).fetchall()
        return dict(rows)

    def sites(self) -> list[str]:
        """Every site with readings stored."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT site FROM readings ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    # -- local snapshots of large aggregates (a cache of the log, never a source of truth) --
    def snapshot(self, aggregate_id: str) -> tuple[str, int, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT kind, version, state FROM snapshots WHERE id = ?", (aggregate_id,)
            ).fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])

    def save_snapshot(self, aggregate_id: str, kind: str, version: int, state: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO snapshots (id, kind, version, state) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE"
                " SET version = excluded.version, state = excluded.state",
                (aggregate_id, kind, version, state),
            )

    def prune(self, before_t: int) -> int:
        """Drop readings older than ``before_t`` (retention). The event log is not touched."""
        with self._lock:
            return self._db.execute("DELETE FROM readings WHERE t < ?", (before_t,)).rowcount

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
