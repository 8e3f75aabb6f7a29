"""The projections database: every projection's tables, its registered migrations, and the
log position it has applied, written in the same transaction as its rows (exactly once across
crashes). The digest proves two nodes hold the same view."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import sqlite_utils

from domain.i18n import _
from projections.accidents import Accidents
from projections.base import TRACKING, LogEvent, Projection
from projections.enforcement import Enforcement
from projections.licences import Licences
from projections.origins import Origins
from projections.queries import region_prefix
from projections.sensors import Sensors

log = logging.getLogger(__name__)

ALL: tuple[Projection, ...] = (Accidents(), Enforcement(), Licences(), Sensors(), Origins())
BY_NAME = {p.name: p for p in ALL}


class ProjectionStore:
    def __init__(self, path: Path, projections: Sequence[Projection] = ALL) -> None:
        self.path = path
        self.projections = list(projections)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        # rows and positions commit together, so a lost tail after a power cut only leaves the
        # projections behind the log (they catch up); no fsync per batch is needed for that
        self.db.execute("PRAGMA synchronous=NORMAL")
        # the whole schema in one transaction: a reader sees every table or none (the tracking
        # table, made last on a new file, is how it knows the projections are there); a
        # migration must be transactional (sqlite-utils' atomic() nests as a savepoint here)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for projection in self.projections:
                projection.migrations().apply(self.db)
            if not self.db.table(TRACKING).exists():
                self.db.table(TRACKING).create({"name": str, "position": int}, pk="name")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def positions(self) -> dict[str, int]:
        found = {r["name"]: r["position"] for r in self.db.table(TRACKING).rows}
        return {p.name: int(found.get(p.name, 0)) for p in self.projections}

    def position(self) -> int:
        """The log position every projection has reached."""
        return min(self.positions().values(), default=0)

    def apply(self, events: list[LogEvent]) -> None:
        """Apply one batch of log events (in log order): each projection takes the events
        after its own position, and records its new position, in one transaction. The
        positions are read under the write lock, so two followers never apply a batch twice."""
        if not events:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            positions = self.positions()
            for projection in self.projections:
                mine = [e for e in events if e.position > positions[projection.name]]
                if not mine:
                    continue
                usable = mine if projection.takes_all else [e for e in mine if e.valid]
                if usable:
                    self._handle(projection, usable)
                self.db.table(TRACKING).upsert(
                    {"name": projection.name, "position": mine[-1].position}, pk="name"
                )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _handle(self, projection: Projection, events: list[LogEvent]) -> None:
        """The batch at once; if the projection cannot apply it, event by event, leaving out
        (and logging) any event it cannot apply, such as a field holding a value of the wrong
        type. Every node leaves out the same events, so views stay identical."""
        self.db.execute("SAVEPOINT batch")
        try:
            projection.handle(self.db, events)
            return
        except Exception:
            self.db.execute("ROLLBACK TO batch")
        finally:
            self.db.execute("RELEASE batch")
        for e in events:
            self.db.execute("SAVEPOINT one")
            try:
                projection.handle(self.db, [e])
            except Exception as error:
                self.db.execute("ROLLBACK TO one")
                log.warning(
                    _(
                        "{projection} projection left out {type} ({aggregate} v{version} at"
                        " position {position} from {origin}): {error}",
                        projection=projection.name,
                        type=e.type,
                        aggregate=e.aggregate,
                        version=e.version,
                        position=e.position,
                        origin=e.origin,
                        error=repr(error),
                    )
                )
            finally:
                self.db.execute("RELEASE one")

    # -- reading ----------------------------------------------------------------------------
    def tables(self) -> list[tuple[str, dict[str, Any]]]:
        """The tables the digest covers (the statistics' cells, derived from them, are not)."""
        return [(t, spec) for p in self.projections for t, spec in p.digested().items()]

    def digest(self, region: str | None = None) -> dict[str, str]:
        """SHA-256 over each event-derived table's rows in primary-key order (canonical
        encoding, columns by name), restricted to a division prefix when given; and over all."""
        each: dict[str, str] = {}
        total = hashlib.sha256()
        for table, spec in sorted(self.tables()):
            h = hashlib.sha256()
            columns = sorted(spec["columns"])
            where, params = _region_filter(spec["columns"], region)
            for row in self.db.query(
                f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}]{where}"
                f" ORDER BY [{spec['pk']}]",
                params,
            ):
                # rows hold text, integers and nulls: msgpack's shortest forms are canonical
                h.update(msgpack.packb([row[c] for c in columns], use_bin_type=True))
            each[table] = h.hexdigest()
            total.update(table.encode() + b"\x00" + h.digest())
        return {"all": total.hexdigest(), **each}

    def close(self) -> None:
        self.db.close()


def _region_filter(columns: dict[str, Any], region: str | None) -> tuple[str, list[Any]]:
    """Rows of an area: by their division, their site's division, or the origin recording
    them (an origin's code is its area's code)."""
    if not region:
        return "", []
    area = [region_prefix(region) + "%"]
    if "division" in columns:
        return " WHERE [division] LIKE ?", area
    if "site_id" in columns:
        return " WHERE [site_id] IN (SELECT id FROM sites WHERE division LIKE ?)", area
    if "origin" in columns:
        return " WHERE [origin] LIKE ?", area
    return "", []


_held = threading.local()  # each reader thread's open connection to the projections


@contextmanager
def reading(path: Path) -> Iterator[sqlite_utils.Database | None]:
    """The projections opened read-only, or None while there are none yet: no file, or a file
    whose schema the projector is still making (a query then answers no rows, never an error).
    Each thread keeps its connection (a new one reads the whole schema first, most of what a
    small query costs); a rebuild copies its tables into the same file, which such a
    connection then reads, and one made again (another file at the path) is opened again."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        yield None
        return
    key = (str(path), found.st_dev, found.st_ino)
    held: _Held | None = getattr(_held, "db", None)
    if held is None or held.key != key:
        fresh = _Held(key, sqlite3.connect(f"file:{path}?mode=ro", uri=True))
        if held is not None:
            held.db.close()
        held = _held.db = fresh
    if not held.ready:
        made = held.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [TRACKING])
        held.ready = made.fetchone() is not None
    if not held.ready or held.db.conn.in_transaction:  # (a read within a read: its snapshot)
        yield held.db if held.ready else None
        return
    held.db.execute("BEGIN")  # one snapshot for every query of this read
    try:
        yield held.db
    finally:
        held.db.execute("ROLLBACK")


class _Held:
    def __init__(self, key: tuple[str, int, int], conn: sqlite3.Connection) -> None:
        self.key, self.db, self.ready = key, sqlite_utils.Database(conn), False


def batches(events: Iterable[LogEvent], size: int) -> Iterable[list[LogEvent]]:
    batch: list[LogEvent] = []
    for e in events:
        batch.append(e)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
