"""Registers read in their order through an index, statistics from the cells (EXPLAIN QUERY
PLAN): no register or statistic reads the accidents, cases or licences tables whole or sorts
them, with the filters people use, and a page costs the same however many records there are."""

import re
from datetime import datetime
from pathlib import Path

import pytest

from domain.base import CHINA, to_ms
from projections.base import LogEvent, chain
from projections.queries import QUERIES, STATUS_VALUES, Filters, Key, cursor, run, statement
from projections.store import ProjectionStore
from tests.factories import credit_code

BIG = {"accidents", "cases", "licences"}
REGISTERS = sorted(name for name, q in QUERIES.items() if q.order and name != "exceptions")
STATISTICS = sorted(name for name, q in QUERIES.items() if q.cells)
SORTED_WHOLE = {"points", "alarms"}  # a node's points; the alarms in force (ended_at IS NULL)
TIES_SORTED = {"excursions", "summaries"}  # in time order by index, a time's rows by site code
T0 = to_ms(datetime(2026, 10, 1, tzinfo=CHINA))
T1 = to_ms(datetime(2026, 11, 1, tzinfo=CHINA))
UUID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = ProjectionStore(tmp_path_factory.mktemp("plans") / "p.db")
    yield store.db
    store.close()


def a_cursor(name: str, missing: bool = False) -> str:
    """A cursor of the query as a page's last row would give (``missing``: without a value)."""

    def value(key: Key):
        if missing and (key.nulls or key.missing is not None):
            return None
        return 1_000 if key.column.endswith(("_at", "_until", "_start", "deadline")) else "x"

    return cursor(name, {key.column: value(key) for key in QUERIES[name].order})


def filter_sets(name: str) -> list[dict]:
    q = QUERIES[name]
    found: list[dict] = [{}, {"region": "130000"}, {"region": "130100"}, {"region": "130102"}]
    if q.grade_column:
        found += [{"grade": "general"}, {"grade": "major", "region": "130100"}]
    if q.industry_column:
        found.append({"industry": "coal_mine"})
    if q.status_column and name in STATUS_VALUES:
        found.append({"status": STATUS_VALUES[name][0]})
    if q.time_column:
        found += [{"since": T0}, {"since": T0, "until": T1}, {"until": T1, "region": "130102"}]
    if q.keyset and q.order:
        found += [{"after": a_cursor(name)}, {"after": a_cursor(name), "region": "130100"}]
        found.append({"after": a_cursor(name, missing=True)})
    return found


def plan(db, name: str, filters: dict, from_rows: bool = False):
    sql, params = statement(name, Filters(**filters), from_rows)
    aliases = dict(
        (alias, table) for table, alias in re.findall(r"(?:FROM|JOIN) (\w+) (\w+)\b", sql)
    )
    lines = [
        (parent, detail)
        for _, parent, _, detail in db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    ]
    return aliases, lines


def read_whole(aliases: dict, lines: list) -> list[str]:
    """Tables a plan reads whole: a scan without an index, or along an index that does not
    give the rows in the query's order (an ordered walk at the top stops at the page's end)."""
    found = []
    for parent, detail in lines:
        m = re.fullmatch(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if m is None:
            continue
        table, index = aliases.get(m[1], m[1]), m[2]
        if index is None or parent != 0 or "_in_order" not in index:
            found.append(f"{table} ({detail})")
    return found


@pytest.mark.parametrize(
    "name, filters",
    [(name, filters) for name in REGISTERS for filters in filter_sets(name)],
    ids=lambda x: x if isinstance(x, str) else ",".join(sorted(x)) or "none",
)
def test_a_register_is_read_in_its_order_through_an_index(db, name, filters):
    aliases, lines = plan(db, name, filters)
    assert not [t for t in read_whole(aliases, lines) if t.split()[0] in BIG], lines
    sorts = [d for parent, d in lines if parent == 0 and d.startswith("USE TEMP B-TREE")]
    if name in SORTED_WHOLE:
        return
    allowed = ["USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"] if name in TIES_SORTED else []
    assert sorts == allowed[: len(sorts)], lines


@pytest.mark.parametrize("name", STATISTICS)
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"level": "city"},
        {"level": "province", "region": "130000"},
        {"region": "130102"},
        {"since": T0, "until": T1},
        {"until": T1, "level": "city", "region": "130100"},
    ],
    ids=lambda f: ",".join(f"{k}" for k in f) or "none",
)
def test_statistics_of_whole_months_read_the_cells_only(db, name, filters):
    aliases, lines = plan(db, name, filters)
    read = {aliases.get(m[1], m[1]) for _, d in lines if (m := re.match(r"\w+ (\w+)", d))}
    read -= {"TEMP"}  # USE TEMP B-TREE FOR GROUP BY / ORDER BY
    assert read and all(t.endswith("_cells") for t in read), lines


@pytest.mark.parametrize("name", STATISTICS)
@pytest.mark.parametrize(
    "filters",
    [{"since": T0 + 1}, {"since": T0, "until": T1 - 3_600_000, "region": "130100"}],
    ids=["since", "since-until-region"],
)
def test_statistics_of_another_period_read_its_records_through_the_time(db, name, filters):
    aliases, lines = plan(db, name, filters)
    assert not read_whole(aliases, lines), lines
    (top,) = [d for parent, d in lines if parent == 0 and d.startswith(("SEARCH", "SCAN"))]
    # the period's records (or the region's: what the planner takes to be fewer)
    assert re.fullmatch(r"SEARCH \w+ USING INDEX \w+ \((\w+_at|division)[<>].*\)", top), top


def test_what_a_record_shows_is_found_by_its_id(db):
    """A record's view lists its exceptions, an accident's its findings (node/service.py):
    each found by the record's id (its few rows sorted), the exceptions' in every part."""
    aliases, lines = plan(db, "exceptions", {"record": UUID})
    assert not [t for t in read_whole(aliases, lines) if t.split()[0] in BIG], lines
    for name in ("accident-findings", "accident-receipts"):
        aliases, lines = plan(db, name, {"accident": UUID})
        assert re.fullmatch(r"SEARCH \w+ USING INDEX \w+ \(accident_id=\?.*", lines[0][1]), lines


# -- what a page costs --------------------------------------------------------------------


def steps(db, name: str, f: Filters) -> int:
    """SQLite's virtual machine steps to answer the query (in hundreds)."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    db.conn.set_progress_handler(tick, 100)
    try:
        run(db, name, f)
    finally:
        db.conn.set_progress_handler(None, 100)
    return count


DIVISIONS = ("130102", "130104", "130402")


def registers(tmp_path: Path, n: int) -> ProjectionStore:
    """n accidents, n open cases and n licences over three counties."""
    store = ProjectionStore(tmp_path / f"{n}.db")
    rows = range(n)
    store.db["accidents"].insert_all(
        {"id": f"a{i:06d}", "occurred_at": T0 + i * 60_000, "grade": "general", "voided": 0}
        | chain(DIVISIONS[i % 3])
        for i in rows
    )
    store.db["cases"].insert_all(
        {"id": f"c{i:06d}", "closed": 0, "voided": 0, "started_at": T0}
        | {"order_deadline": None if i % 4 == 0 else T0 + i * 60_000}
        | chain(DIVISIONS[i % 3])
        for i in rows
    )
    store.db["licences"].insert_all(
        {"id": f"l{i:06d}", "voided": 0, "status": "issued", "valid_until": T0 + i // 2}
        | chain(DIVISIONS[i % 3])
        for i in rows
    )
    return store


@pytest.mark.parametrize("name", ["accidents", "open-cases", "licences"])
def test_a_page_costs_the_same_however_long_the_register(tmp_path, name):
    small, large = registers(tmp_path, 1_000), registers(tmp_path, 20_000)
    for filters in ({}, {"region": "130100"}, {"region": "130402"}):
        page = Filters(limit=50, **filters)
        assert steps(large.db, name, page) <= 1.5 * steps(small.db, name, page) + 5, filters
    # deep in the register: continuing from a page's last row costs what the first page does,
    # skipping 18,000 rows by offset costs walking them
    deep = run(large.db, name, Filters(limit=1, offset=18_000))[0]
    after = Filters(limit=50, after=cursor(name, deep))
    assert steps(large.db, name, after) <= 1.5 * steps(large.db, name, Filters(limit=50)) + 5
    assert steps(large.db, name, Filters(limit=50, offset=18_000)) > 10 * steps(
        large.db, name, after
    )
    assert run(large.db, name, after) == run(large.db, name, Filters(limit=50, offset=18_001))
    small.close()
    large.close()


def accidents_reported(n: int) -> list[LogEvent]:
    """n accidents in three counties, two months and two grades: twelve cells."""
    return [
        LogEvent(
            i + 1,
            "130100",
            f"a{i:06d}",
            1,
            "accident.reported/1",
            i,
            {
                "enterprise_id": "e",
                "enterprise_name": "某矿",
                "enterprise_credit_code": credit_code(1),
                "industry": "coal_mine",
                "place": "p",
                "occurred_at": (T0, T1)[i % 2] + i,
                "reported_at": (T0, T1)[i % 2] + i,
                "grade": ("general", "larger")[i % 4 // 2],
                "division": DIVISIONS[i % 3],
                "deaths": i % 3,
                "missing": 0,
                "serious_injuries": 0,
                "direct_loss_yuan": 0,
            },
        )
        for i in range(n)
    ]


def test_statistics_cost_the_same_however_many_records(tmp_path):
    costs = []
    for n in (240, 4_800):
        store = ProjectionStore(tmp_path / f"s{n}.db")
        store.apply(accidents_reported(n))
        f = Filters(level="city")
        assert run(store.db, "accident-stats", f) == run(store.db, "accident-stats", f, True)
        assert sum(r["accidents"] for r in run(store.db, "accident-stats", f)) == n
        costs.append(steps(store.db, "accident-stats", f))
        store.close()
    assert costs[1] <= costs[0] + 5
