"""What every projection shares: the events it reads, its tables, and batched application.

A projection turns a batch of log events into row changes held in memory, then writes them
with one statement per table (``upsert_all``); its rows and its log position are committed in
the same transaction by the store (projections.store)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from functools import cache, lru_cache
from typing import Any, ClassVar, Final

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


@dataclass(frozen=True)
class Index:
    """An index given in SQL: its columns or expressions in order (``occurred_at DESC``,
    ``substr(division, 1, 4)``), over the rows ``where`` keeps when it is partial. A query uses
    an expression index only where it writes the same expression; a partial one only where its
    WHERE implies ``where`` (``c.voided = 0`` implies ``voided = 0``)."""

    name: str
    on: tuple[str, ...]
    where: str | None = None

    def sql(self, table: str) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        on = ", ".join(self.on)
        return f"CREATE INDEX IF NOT EXISTS [{self.name}] ON [{table}] ({on}){where}"


# the code prefixes a region filter compares (province 13, city 1301, county 130102)
REGION_LENGTHS: Final = (2, 4, 6)
# after every time (ms) a register holds: where a time is missing, for "those without one last"
LAST: Final = 2**63 - 1


def nulls_last(column: str) -> str:
    """A column ascending with the rows that have no value last, as one term an index holds
    (so a page after a given row starts at that row in the index). For the times the domain
    records (milliseconds) this is the order of ``column IS NULL, column``."""
    return f"COALESCE({column}, {LAST})"


def in_order(table: str, order: tuple[str, ...], where: str | None = None) -> list[Index]:
    """The indexes that give a register's rows in its order, all of them and those of one
    region at each level (``substr(division, 1, n) = ?``, as projections.queries writes a
    region filter), so a page reads its own rows only. ``order`` starts with the columns its
    query fixes by equality (``voided``), which ``where`` may also hold (a partial index)."""
    found = [Index(f"{table}_in_order", order, where)]
    for n in REGION_LENGTHS:
        found.append(Index(f"{table}_in_order_{n}", (f"substr(division, 1, {n})", *order), where))
    return found


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
    # later index versions, each a migration that brings the tables' indexes to the spec
    # (drops those it no longer names, creates the new ones) without a replay
    reindexes: ClassVar[tuple[str, ...]] = ()
    # table -> {"columns": {...}, "pk": ..., "indexes": [[column, ...] | Index, ...]}; a
    # "derived" table holds what a query would compute from the others (the statistics' cells):
    # it is maintained with them but left out of the digest, which proves the rows themselves
    tables: ClassVar[dict[str, dict[str, Any]]]

    def migrations(self) -> Migrations:
        """The projection's schema as registered migrations (sqlite-utils): applied once each,
        in order, recorded in the database. A schema change is a new migration here."""
        migrations = Migrations(f"anjian.{self.name}")

        @migrations(name="0001_create_tables")
        def create_tables(db: sqlite_utils.Database) -> None:
            for table, spec in self.tables.items():
                db.table(table).create(spec["columns"], pk=spec.get("pk"))
            reindex(db)

        def reindex(db: sqlite_utils.Database) -> None:
            for table, spec in self.tables.items():
                wanted = [_index(table, index) for index in spec.get("indexes", [])]
                names = {index.name for index in wanted}
                for old in db.table(table).indexes:
                    if old.origin == "c" and old.name not in names:  # made by CREATE INDEX
                        db.execute(f"DROP INDEX [{old.name}]")
                for index in wanted:
                    db.execute(index.sql(table))

        def recreate(db: sqlite_utils.Database) -> None:
            for table in self.tables:
                db.table(table).drop(ignore=True)
            create_tables(db)
            if db.table(TRACKING).exists():
                db.execute(f"DELETE FROM [{TRACKING}] WHERE name = ?", [self.name])

        steps = [(v, recreate) for v in self.replays] + [(v, reindex) for v in self.reindexes]
        for version, step in sorted(steps, key=lambda s: s[0]):  # 0002_... before 0003_...
            migrations(name=version)(step)
        return migrations

    def handle(self, db: sqlite_utils.Database, events: list[LogEvent]) -> None:
        raise NotImplementedError

    @classmethod
    def digested(cls) -> dict[str, dict[str, Any]]:
        """The tables the digest covers: all but the derived ones."""
        return {t: spec for t, spec in cls.tables.items() if not spec.get("derived")}

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


def _index(table: str, index: list[str] | Index) -> Index:
    """An index spec as SQL: a list of columns is named as sqlite-utils names it."""
    if isinstance(index, Index):
        return index
    return Index(f"idx_{table}_{'_'.join(index)}", tuple(f"[{c}]" for c in index))
