"""Paging a register by ``after`` (a page's last row as ``cursor`` gives it) yields every row
once, in the register's order, whatever the ties and missing values; a cursor that is not one,
or on a query that cannot be paged so, is refused naming ``after``."""

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import CHINA, to_ms
from projections.base import chain
from projections.errors import BadFilter
from projections.queries import Filters, check_applies, cursor, next_page, run
from projections.store import ProjectionStore

T0 = to_ms(datetime(2026, 10, 1, tzinfo=CHINA))
DIVISIONS = ("130102", "130104", "130402")
PAGED = ("accidents", "open-cases", "licences", "accident-receipts", "accident-findings")

times = st.sampled_from((T0, T0 + 1, T0 + 86_400_000))  # few values: many ties
maybe_times = st.one_of(st.none(), times)
places = st.sampled_from(DIVISIONS).map(chain)


def fill(store: ProjectionStore, draw) -> None:
    n = draw(st.integers(0, 30))
    ids = [f"{i:02d}" for i in draw(st.permutations(range(n)))]  # ids out of time order
    rows = [(i, draw(places), draw(times), draw(maybe_times)) for i in ids]
    store.db["accidents"].insert_all(
        {"id": f"a{i}", "occurred_at": t, "voided": 0, "grade": "general"} | p
        for i, p, t, _ in rows
    )
    store.db["cases"].insert_all(
        {"id": f"c{i}", "closed": 0, "voided": 0, "started_at": t, "order_deadline": d} | p
        for i, p, t, d in rows
    )
    store.db["licences"].insert_all(
        {"id": f"l{i}", "voided": 0, "status": "issued", "valid_until": d} | p
        for i, p, _, d in rows
    )
    store.db["accident_receipts"].insert_all(
        {
            "id": f"r{i}",
            "accident_id": f"a{i}",  # one receipt per accident and receiving node
            "origin": draw(st.sampled_from(("130100", "130000"))),
            "reporting_origin": p["division"],
            "report_recorded_at": draw(maybe_times),
            "tiers_above": draw(st.sampled_from((None, 1, 2))),
        }
        for i, p, t, _ in rows
    )
    store.db["accident_findings"].insert_all(
        {"id": f"f{i}", "accident_id": f"a{i}", "recorded_at": d, "voided": 0} | p
        for i, p, _, d in rows
    )


def pages(store: ProjectionStore, name: str, size: int, **filters) -> list[dict]:
    found: list[dict] = []
    f = Filters(limit=size, **filters)
    while True:
        page = run(store.db, name, f)
        found += page
        after = next_page(name, f, page)
        if after is None:
            return found
        f = Filters(limit=size, after=after, **filters)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_pages_after_pages_give_the_whole_register_in_order(data):
    store = ProjectionStore(Path(":memory:"))
    fill(store, data.draw)
    size = data.draw(st.integers(1, 7))
    for name in PAGED:
        for filters in ({}, {"region": "130100"}, {"region": "130402", "since": T0 + 1}):
            whole = run(store.db, name, Filters(limit=1_000, **filters))
            assert pages(store, name, size, **filters) == whole, (name, filters)
    store.close()


def test_a_cursor_that_is_not_one_is_refused_naming_after():
    for name, after in (
        ("accidents", "not a cursor"),
        ("accidents", "W10"),  # [] : not this query's
        ("accidents", "eyJhIjoxfQ"),  # {"a":1}
        ("accident-stats", cursor("accidents", {"occurred_at": 1, "id": "a"})),
        ("summaries", "WzEsIngiXQ"),  # site codes may repeat: offset only
    ):
        with pytest.raises(BadFilter) as e:
            check_applies(name, Filters.parse({"after": after}, 0))
        assert e.value.parameter == "after", (name, after)
