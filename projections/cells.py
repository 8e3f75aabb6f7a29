"""The statistics' cells: the ``accident-stats`` and ``enforcement-stats`` figures summed per
finest cell (a division and a month; for accidents also a grade and an industry), kept by the
projections as events arrive, so a statistics query sums cells, not records.

A cell is never adjusted by a difference: after each batch, every cell a written row was in
before or is in after (an accident corrected into another month, a case voided, an accident
whose receipts or findings changed) is counted again from its rows, through an index on the
cell's key. So a cell is the same whether built event by event, in batches or by a rebuild,
and equals what the statistics query computes from the rows (tests/projections/test_cells.py).
Cells are derived from the other tables, so the digest leaves them out."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import sqlite_utils

from projections.base import Index

# A receipt that judges a required onward report (493号令 Art. 10): its tier is at most as far
# above the reporting node as the tier the accident must reach (the register's column, which
# follows the division's chain). Needs the receipt as r and the register as a.
REQUIRED = "r.tiers_above <= a.must_reach_steps"

# per accident (as a): a required onward report was late (迟报 by a bureau passing it on)
LATE_ONWARD = (
    "EXISTS (SELECT 1 FROM accident_receipts r WHERE r.accident_id = a.id"
    f" AND r.on_time = 0 AND {REQUIRED})"
)


def has_finding(finding: str) -> str:
    """Per accident (as a): a finding of this kind (漏报, 谎报, 瞒报) not voided."""
    return (
        "EXISTS (SELECT 1 FROM accident_findings f WHERE f.accident_id = a.id"
        f" AND f.voided = 0 AND f.finding = '{finding}')"
    )


FINDINGS = ("omitted", "falsified", "concealed")
PLACE = ("division", "county", "city", "province")

# the accident-stats figures: the cell's column and what it sums over the accidents (as a)
ACCIDENT_FIGURES: dict[str, str] = {
    "accidents": "1",
    "deaths": "a.deaths",
    "missing": "a.missing",
    "serious_injuries": "a.serious_injuries",
    "direct_loss_yuan": "a.direct_loss_yuan",
    "late_report": "a.late_report",
    "late_onward": LATE_ONWARD,
    **{finding: has_finding(finding) for finding in FINDINGS},
}
ACCIDENT_KEY = ("division", "month", "grade", "industry")

# the enforcement-stats figures (docs/domain.md §3.4): the cell's column, what it sums (as c)
CASE_FIGURES: dict[str, str] = {
    "inspections": "1",
    **{
        column: f"c.{column}"
        for column in (
            "hazards_general",
            "rectified_general",
            "hazards_major",
            "rectified_major",
            "filed",
            "fines_yuan",
            "warnings",
            "shutdown",
            "licence_suspensions",
            "licence_revocations",
            "suspensions_recommended",
            "revocations_recommended",
            "closure",
        )
    },
}
CASE_KEY = ("division", "month")


def _spec(key: tuple[str, ...], figures: Iterable[str], name: str) -> dict[str, Any]:
    columns: dict[str, Any] = {c: str for c in (*PLACE, *key) if c != "division"}
    return {
        "columns": {"division": str, **columns, **{f: int for f in figures}},
        "pk": None,  # a key's rows are deleted and counted again together, nulls and all
        "indexes": [Index(f"{name}_key", key)],
        "derived": True,
    }


ACCIDENT_CELLS = _spec(ACCIDENT_KEY, ACCIDENT_FIGURES, "accident_cells")
CASE_CELLS = _spec(CASE_KEY, CASE_FIGURES, "enforcement_cells")

# the indexes that count a cell again from its rows (statistics count rows not voided)
ACCIDENTS_BY_CELL = Index("accidents_by_cell", ACCIDENT_KEY, "voided = 0")
CASES_BY_CELL = Index("cases_by_cell", CASE_KEY, "voided = 0")


def _recount_sql(
    cells: str, rows: str, alias: str, key: tuple[str, ...], figures: dict[str, str]
) -> tuple[str, str]:
    match = " AND ".join(f"{c} IS ?" for c in key)
    place = ", ".join(f"{alias}.{c}" for c in PLACE[1:])
    sums = ", ".join(f"SUM({expression})" for expression in figures.values())
    keyed = [*PLACE, *(c for c in key if c != "division")]  # the place and key, once each
    insert = (
        f"INSERT INTO [{cells}] ({', '.join([*keyed, *figures])})"
        f" SELECT {', '.join(f'{alias}.{c}' for c in keyed)}, {sums}"
        f" FROM [{rows}] {alias} WHERE {alias}.voided = 0"
        f" AND {' AND '.join(f'{alias}.{c} IS ?' for c in key)}"
        f" GROUP BY {place}"
    )
    return f"DELETE FROM [{cells}] WHERE {match}", insert


_ACCIDENTS = _recount_sql("accident_cells", "accidents", "a", ACCIDENT_KEY, ACCIDENT_FIGURES)
_CASES = _recount_sql("enforcement_cells", "cases", "c", CASE_KEY, CASE_FIGURES)


def accident_keys(db: sqlite_utils.Database, ids: Collection[str]) -> dict[str, tuple[Any, ...]]:
    """The cell each of these accidents is in (those held here)."""
    return _keys(db, "accidents", ACCIDENT_KEY, ids)


def recount_accidents(db: sqlite_utils.Database, keys: Iterable[tuple[Any, ...]]) -> None:
    _recount(db, _ACCIDENTS, keys)


def case_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in CASE_KEY)


def recount_cases(db: sqlite_utils.Database, keys: Iterable[tuple[Any, ...]]) -> None:
    _recount(db, _CASES, keys)


def _keys(
    db: sqlite_utils.Database, table: str, key: tuple[str, ...], ids: Collection[str]
) -> dict[str, tuple[Any, ...]]:
    ids = sorted(ids)
    found: dict[str, tuple[Any, ...]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(
            f"SELECT id, {', '.join(key)} FROM [{table}] WHERE id IN ({marks})", chunk
        ):
            found[row[0]] = tuple(row[1:])
    return found


def _recount(
    db: sqlite_utils.Database, sql: tuple[str, str], keys: Iterable[tuple[Any, ...]]
) -> None:
    ordered = sorted(set(keys), key=repr)  # a stable order: the cells written alike everywhere
    if not ordered:
        return
    delete, insert = sql
    db.conn.executemany(delete, ordered)
    db.conn.executemany(insert, ordered)
