"""What every projection shares: the events it reads, its tables, and batched application.

A projection turns a batch of log events into row changes held in memory, then writes them
with one statement per table (``upsert_all``); its rows and its log position are committed in
the same transaction by the store (projections.store)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from functools import cache, lru_cache
from typing import Any, ClassVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from domain.base import CHINA, EVENT_TYPES, from_ms
from domain.codes import region_chain

TRACKING = "_positions"  # each projection's log position, committed with its rows


@dataclass(frozen=True)
class LogEvent:
    position: int  # in this node's log: progress only, never part of a row
    origin: str  # the node that recorded it (actor.node)
    aggregate: str
    version: int
    type: str
    at: int  # recording time, ms UTC
    payload: dict[str, Any]
    valid: bool = True  # a type this node knows, with every field that type requires


def month(ms: int | None) -> str | None:
    """YYYY-MM in China Standard Time (statistics count months as bureaus do)."""
    if ms is None:
        return None
    return from_ms(ms).astimezone(CHINA).strftime("%Y-%m")


def chain(division: str) -> dict[str, Any]:
    county, city, province = _chain(division)
    return {"division": division, "county": county, "city": city, "province": province}


@lru_cache(maxsize=8192)  # a few thousand divisions in the whole country
def _chain(division: str) -> tuple[str | None, str | None, str | None]:
    c = region_chain(division)
    return c["county"], c["city"], c["province"]


def name_key(name: str | None) -> str | None:
    """An enterprise name as the cross-record checks compare it: NFKC (full-width brackets and
    letters as their half-width forms), case folded, without whitespace, so that
    "某公司（一分厂）" and "某公司(一分厂) " are one name."""
    if name is None:
        return None
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


def well_formed(type_name: str, payload: dict[str, Any]) -> bool:
    """Whether an event is of a type this node knows and carries every field it requires
    (fields it does not know, from a newer node, are allowed and ignored)."""
    required = _required_fields(type_name)
    return required is not None and required <= payload.keys()


@cache
def _required_fields(type_name: str) -> frozenset[str] | None:
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        return None
    common = {"originator_id", "originator_version", "recorded_at", "actor"}
    return frozenset(
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in common
    )


class Projection:
    """Base: subclasses name their tables (with primary keys) and handle event types. They see
    well-formed events only, unless ``takes_all`` (the origins count the others)."""

    name: ClassVar[str]
    takes_all: ClassVar[bool] = False
    # later schema versions, each a migration that recreates the tables and has the projection
    # replay the log from the start (its rows are derived, never edited by hand)
    replays: ClassVar[tuple[str, ...]] = ()
    tables: ClassVar[dict[str, dict[str, Any]]]  # table -> {"columns": {...}, "pk": ...}

    def migrations(self) -> Migrations:
        """The projection's schema as registered migrations (sqlite-utils): applied once each,
        in order, recorded in the database. A schema change is a new migration here."""
        migrations = Migrations(f"anjian.{self.name}")

        @migrations(name="0001_create_tables")
        def create_tables(db: sqlite_utils.Database) -> None:
            for table, spec in self.tables.items():
                db.table(table).create(spec["columns"], pk=spec["pk"])
                for index in spec.get("indexes", []):
                    db.table(table).create_index(index)

        def recreate(db: sqlite_utils.Database) -> None:
            for table in self.tables:
                db.table(table).drop(ignore=True)
            create_tables(db)
            if db.table(TRACKING).exists():
                db.execute(f"DELETE FROM [{TRACKING}] WHERE name = ?", [self.name])

        for version in self.replays:
            migrations(name=version)(recreate)
        return migrations

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        raise NotImplementedError

    # -- helpers for batched read-modify-write -----------------------------------------------
    def fold(
        self,
        db: sqlite_utils.Database,
        table: str,
        events: list[LogEvent],
        apply: Callable[[dict[str, dict[str, Any]], LogEvent], None],
    ) -> None:
        """Apply events to the rows of their aggregates (a table keyed by aggregate id): the
        rows read in one query, changed in memory in log order, written in one statement."""
        if not events:
            return
        rows = self.load(db, table, "id", (e.aggregate for e in events))
        for e in events:
            apply(rows, e)
        self.save(db, table, "id", rows.values())

    @staticmethod
    def load(
        db: sqlite_utils.Database, table: str, pk: str, keys: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.query(f"SELECT * FROM [{table}] WHERE [{pk}] IN ({marks})", chunk):
                found[row[pk]] = dict(row)
        return found

    @staticmethod
    def save(
        db: sqlite_utils.Database,
        table: str,
        pk: str | tuple[str, ...],
        rows: Iterable[dict[str, Any]],
    ) -> None:
        """Write whole rows, one statement for the batch (rows carry every column)."""
        rows = list(rows)
        if not rows:
            return
        columns = list(rows[0])
        sql = (
            f"INSERT OR REPLACE INTO [{table}] ({', '.join(f'[{c}]' for c in columns)})"
            f" VALUES ({', '.join('?' * len(columns))})"
        )
        db.conn.executemany(sql, [[row[c] for c in columns] for row in rows])
