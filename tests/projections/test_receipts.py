"""The accident register holds each tier's receipt of a report against 2 hours per tier, from
real events: a county reports, the city, the province and the national centre each record their
receipt (the city's and the national's on time, the province's late: each tier passes the report
on within 2 hours of its own receipt, 493号令 Art. 11), and a view that holds all
their logs (as the national centre does) joins each receipt with the report, whatever the order
in which the origins' events arrived; a receipt whose report is not held is still shown."""

import dataclasses
from pathlib import Path

import pytest

from domain.base import HOUR_MS, to_ms
from federation.envelope import parse
from node import config as config_mod
from node.projector import log_events
from node.replication.receipts import record_receipts
from node.service import Node
from projections.queries import Filters, run
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import NOW, accident, credit_code, js

REPORTED = to_ms(NOW)
AS_OF = REPORTED + 100 * HOUR_MS
# tier: (region, hours after the report at which its node applies it)
TIERS = {"city": ("130100", 1), "province": ("130000", 5), "national": ("000000", 6)}


def node_at(tmp, tier, region, at):
    directory = make_node_dir(tmp / f"{tier}-{region}", tier=tier, region=region)
    return Node(config_mod.load(directory, environ={}), clock=Clock(at))


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Each origin's log events. The county (130102) reports a 较大 accident (3 dead) and, a
    minute later, a 一般 one; every tier receives the first, only the city the second."""
    tmp = tmp_path_factory.mktemp("receipts")
    county = node_at(tmp, "county", "130102", REPORTED)
    county.execute("accident.report", js(accident(deaths=3)), user="clerk")
    county.clock.advance(60_000)
    second = accident(enterprise_credit_code=credit_code(2), serious_injuries=1)
    county.execute("accident.report", js(second), user="clerk")
    reports = [
        (e.aggregate, e.origin, e.seq, e.at)
        for e in map(parse, county.log.envelopes())
        if e.type == "accident.reported/1"
    ]
    out = {"130102": log_events(county.log, 0, 1000)}
    county.close()
    for tier, (region, hours) in TIERS.items():
        node = node_at(tmp, tier, region, REPORTED + hours * HOUR_MS)
        assert record_receipts(node, reports if tier == "city" else reports[:1]) == (
            2 if tier == "city" else 1
        )
        out[region] = log_events(node.log, 0, 1000)
        node.close()
    return {"events": out, "first": reports[0][0], "second": reports[1][0]}


def view(ordered):
    store = ProjectionStore(Path(":memory:"))
    store.apply([dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)])
    return store


def q(store, **filters):
    return run(store.db, "accident-receipts", Filters(as_of=AS_OF, **filters))


def test_each_tier_is_held_against_two_hours_per_tier_above_the_reporting_county(logs):
    store = view([e for events in logs["events"].values() for e in events])
    rows = q(store, accident=logs["first"])
    assert [
        (r["tier"], r["origin"], r["tiers_above"], r["received_at"] - REPORTED, r["on_time"])
        for r in rows
    ] == [
        ("city", "130100", 1, 1 * HOUR_MS, 1),
        ("province", "130000", 2, 5 * HOUR_MS, 0),  # due 2 h after the city's receipt: +3 h
        ("national", "000000", 3, 6 * HOUR_MS, 1),  # due 2 h after the province's: +7 h
    ]
    assert [(r["due_from"], r["due_from_at"] - REPORTED) for r in rows] == [
        ("130102", 0),  # the report itself
        ("130100", 1 * HOUR_MS),
        ("130000", 5 * HOUR_MS),
    ]
    assert [r["deadline"] - REPORTED for r in rows] == [2 * HOUR_MS, 3 * HOUR_MS, 7 * HOUR_MS]
    assert [r["minutes_late"] for r in rows] == [0, 120, 0]
    # the province is the last tier a 较大 report must reach (Art. 10): the national one is not
    assert [r["required"] for r in rows] == [1, 1, 0]
    for r in rows:  # joined with the report: the accident's place and grade
        assert (
            r["report_held"],
            r["division"],
            r["grade"],
            r["must_reach_tier"],
            r["must_reach_region"],
        ) == (1, "130102", "larger", "province", "130000")
        assert (r["reporting_origin"], r["reporting_seq"], r["reporting_tier"]) == (
            "130102",
            1,
            "county",
        )
        assert r["report_recorded_at"] == REPORTED
    late = q(store, status="late")
    assert [(r["accident_id"], r["tier"]) for r in late] == [(logs["first"], "province")]
    assert len(q(store)) == 4 and len(q(store, accident=logs["second"])) == 1
    assert len(q(store, region="130100")) == 4 and q(store, region="130400") == []
    assert len(q(store, grade="general")) == 1
    store.close()


def test_a_receipt_without_its_report_is_shown_and_joined_once_the_report_arrives(logs):
    receipts_only = [e for o, events in logs["events"].items() if o != "130102" for e in events]
    alone = view(receipts_only)
    rows = q(alone, accident=logs["first"])
    assert [(r["tier"], r["on_time"], r["report_held"], r["division"]) for r in rows] == [
        ("city", 1, 0, None),
        ("province", 0, 0, None),
        ("national", 1, 0, None),
    ]
    # without the report, the reporting origin stands for the accident's area
    assert len(q(alone, region="130102")) == 4 and q(alone, region="130200") == []
    alone.close()
    report_last = view([*receipts_only, *logs["events"]["130102"]])
    report_first = view([*logs["events"]["130102"], *receipts_only])
    assert report_last.digest() == report_first.digest()
    assert q(report_last) == q(report_first)
    assert {r["report_held"] for r in q(report_last)} == {1}
    report_last.close()
    report_first.close()


def test_receipts_are_in_the_digest_and_its_regions_follow_the_receiving_origin(logs):
    events = logs["events"]
    without_province = view([e for o in ("130102", "130100", "000000") for e in events[o]])
    everything = view([e for o in events for e in events[o]])
    assert (
        without_province.digest()["accident_receipts"] != everything.digest()["accident_receipts"]
    )
    assert without_province.digest()["accidents"] == everything.digest()["accidents"]
    # the province's area holds the city's and the province's receipts, not the national one's
    hebei = everything.digest("130000")["accident_receipts"]
    assert hebei != everything.digest()["accident_receipts"]
    assert hebei != without_province.digest("130000")["accident_receipts"]
    without_province.close()
    everything.close()


def test_a_store_made_before_receipts_gets_the_table_and_replays_the_accidents(logs, tmp_path):
    events = [e for o in logs["events"] for e in logs["events"][o]]
    events = [dataclasses.replace(e, position=i + 1) for i, e in enumerate(events)]
    store = ProjectionStore(tmp_path / "p.db")
    store.apply(events)
    before = store.digest()
    store.db.execute("DELETE FROM _sqlite_migrations WHERE name = '0002_accident_receipts'")
    store.db.execute("DROP TABLE accident_receipts")
    store.close()
    reopened = ProjectionStore(tmp_path / "p.db")
    assert reopened.positions()["accidents"] == 0
    assert reopened.positions()["enforcement"] == len(events)
    reopened.apply(events)
    assert reopened.digest() == before
    reopened.close()


def test_a_filter_by_accident_is_a_record_id():
    with pytest.raises(ValueError, match="not a record id"):
        Filters(accident="42")
