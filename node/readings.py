"""The local raw readings store: append-only SQLite beside the event log (never part of it),
kept for a retention period (AQ 6201: real-time values at least 3 months). Ids only grow, so
"everything after id N" is exact even after old rows are pruned."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from domain.sensors.readings import WINDOW_MS, Reading
from node.access import private_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS raw (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site INTEGER NOT NULL,
    point INTEGER NOT NULL,
    t INTEGER NOT NULL,
    value INTEGER NOT NULL,
    status INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS raw_once ON raw (site, t, point);
CREATE INDEX IF NOT EXISTS raw_site_id ON raw (site, id);
CREATE TABLE IF NOT EXISTS derived (site TEXT PRIMARY KEY, through_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS latest (
    site TEXT NOT NULL, point TEXT NOT NULL, t INTEGER NOT NULL, PRIMARY KEY (site, point)
);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL
);
"""
# Readings as an investigator queries them (the codes, not their numbers).
VIEW = """
CREATE VIEW IF NOT EXISTS readings AS
SELECT r.id, s.code AS site, p.code AS point, r.t, r.value, r.status, r.received_at
FROM raw r JOIN sites s ON s.id = r.site JOIN points p ON p.id = r.point
"""
# Stores made before the compact layout: one table with the codes in every row (~160 bytes a
# reading with its four indexes, against ~65 now); taken over once, ids kept.
MIGRATE = """
INSERT OR IGNORE INTO sites (code) SELECT DISTINCT site FROM readings;
INSERT OR IGNORE INTO points (code) SELECT DISTINCT point FROM readings;
INSERT INTO raw (id, site, point, t, value, status, received_at)
    SELECT r.id, s.id, p.id, r.t, r.value, r.status, r.received_at
    FROM readings r JOIN sites s ON s.code = r.site JOIN points p ON p.code = r.point
    ORDER BY r.id;
UPDATE sqlite_sequence
    SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'readings'))
    WHERE name = 'raw' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'readings');
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'raw', seq FROM sqlite_sequence WHERE name = 'readings'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'raw');
DROP TABLE readings;
"""


class ReadingsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()  # reentrant: _site is used inside and outside
        if path.parent.is_dir():  # else SQLite says what is wrong
            private_store(path)  # readings.db and its -wal, -shm: 0600
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._take_over()
        self._db.executescript(VIEW)
        self._sites: dict[str, int] = dict(self._db.execute("SELECT code, id FROM sites"))
        self._points: dict[str, int] = dict(self._db.execute("SELECT code, id FROM points"))

    def _take_over(self) -> None:
        """Move a store of the earlier layout into this one, once: under the write lock, so a
        second process of the node opening it at the same moment finds it done."""

        def earlier() -> bool:
            row = self._db.execute("SELECT type FROM sqlite_master WHERE name = 'readings'")
            return bool(row.fetchone() == ("table",))

        if not earlier():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if earlier():
                for statement in MIGRATE.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _site(self, code: str) -> int:
        """The number of a site code for reading (0: no readings), also when another process
        of the node stored its first readings."""
        found = self._sites.get(code)
        if found is None:
            with self._lock:
                row = self._db.execute("SELECT id FROM sites WHERE code = ?", (code,)).fetchone()
            if row is None:
                return 0
            found = self._sites[code] = int(row[0])
        return found

    def _id(self, table: str, cache: dict[str, int], code: str) -> int:
        """The number of a site or point code (inside the caller's transaction)."""
        found = cache.get(code)
        if found is None:
            self._db.execute(f"INSERT OR IGNORE INTO {table} (code) VALUES (?)", (code,))
            row = self._db.execute(f"SELECT id FROM {table} WHERE code = ?", (code,)).fetchone()
            found = cache[code] = int(row[0])
        return found

    def append(self, site: str, rows: Iterable[tuple[str, int, int, int]], received_at: int) -> int:
        """Store a batch in one transaction; returns how many rows were new (a reading of a
        point at a time already stored, e.g. a retried batch, is kept once)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                number = self._id("sites", self._sites, site)
                cursor = self._db.executemany(
                    "INSERT OR IGNORE INTO raw (site, point, t, value, status, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (number, self._id("points", self._points, p), t, v, s, received_at)
                        for p, t, v, s in rows
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._sites = dict(self._db.execute("SELECT code, id FROM sites"))
                self._points = dict(self._db.execute("SELECT code, id FROM points"))
                raise
            return cursor.rowcount

    def _select(self, sql: str, *args: object) -> list[Reading]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Reading(*row) for row in rows]

    def after(self, site: str, after_id: int) -> list[Reading]:
        return self._select(
            "SELECT r.id, p.code, r.t, r.value, r.status FROM raw r"
            " JOIN points p ON p.id = r.point WHERE r.site = ? AND r.id > ? ORDER BY r.id",
            self._site(site),
            after_id,
        )

    def window(self, site: str, start: int) -> list[Reading]:
        """The readings of one 5-minute window, in store order: what its summary covers."""
        return self._select(
            "SELECT r.id, p.code, r.t, r.value, r.status FROM raw r"
            " JOIN points p ON p.id = r.point"
            " WHERE r.site = ? AND r.t >= ? AND r.t < ? ORDER BY r.id",
            self._site(site),
            start,
            start + WINDOW_MS,
        )

    def windows(self, site: str, from_t: int, before_t: int) -> list[int]:
        """Starts of the windows with readings between two times."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT t - t % ? FROM raw WHERE site = ? AND t >= ? AND t < ? ORDER BY 1",
                (WINDOW_MS, self._site(site), from_t, before_t),
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
            rows = self._db.execute(
                "SELECT code FROM sites s WHERE EXISTS (SELECT 1 FROM raw WHERE site = s.id)"
                " ORDER BY 1"
            ).fetchall()
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
        with self._lock:  # site by site: each along its (site, t) index
            numbers = [int(r[0]) for r in self._db.execute("SELECT id FROM sites")]
            return sum(
                self._db.execute(
                    "DELETE FROM raw WHERE site = ? AND t < ?", (number, before_t)
                ).rowcount
                for number in numbers
            )

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM raw").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
