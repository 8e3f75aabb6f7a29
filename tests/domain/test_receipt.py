import uuid
from datetime import timedelta

import pytest

from domain.base import EVENT_TYPES, HOUR_MS, Aggregate, iso, to_ms
from domain.errors import Refused
from domain.receipt import (
    RECEIPT_NAMESPACE,
    Receipt,
    ReceiptRecorded,
    RecordReceipt,
    judge,
    origin_tier,
    receipt_id,
    tiers_above,
)
from tests.factories import NOW, ctx, js

ACCIDENT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
REPORTED = to_ms(NOW)  # the county recorded its report at NOW
CITY = {"region": "130100", "tier": "city"}


def command(accident_id=ACCIDENT_ID, origin="130102", seq=7, at=REPORTED):
    body = {
        "accident_id": accident_id,
        "reporting_origin": origin,
        "reporting_seq": seq,
        "report_recorded_at": at,
    }
    return RecordReceipt.model_validate_json(js(body))


def receive(after=timedelta(hours=1), **node):
    return Receipt.record(command(), ctx(now=NOW + after, **(node or CITY)))


def test_the_id_derives_from_the_receiving_origin_and_the_accident():
    expected = uuid.uuid5(RECEIPT_NAMESPACE, f"130100:{ACCIDENT_ID}")
    assert receipt_id("130100", ACCIDENT_ID) == expected
    assert receipt_id("130100", uuid.UUID(ACCIDENT_ID.upper())) == expected  # any form of the id
    assert receipt_id("130000", ACCIDENT_ID) != expected  # each tier its own receipt
    assert receipt_id("130100", str(uuid.uuid4())) != expected
    # the same report received again derives the same record: one receipt per accident and node
    assert receive().id == receive(after=timedelta(hours=3)).id == expected
    assert Receipt.DERIVED_ID


def test_the_receipt_carries_the_report_and_the_receiving_node():
    agg = receive()
    (event,) = agg.collect_events()
    assert type(event) is ReceiptRecorded and EVENT_TYPES["accident.receipt_recorded/1"] is (
        ReceiptRecorded
    )
    assert event.payload() == {
        "accident_id": ACCIDENT_ID,
        "reporting_origin": "130102",
        "reporting_seq": 7,
        "report_recorded_at": REPORTED,
        "tier": "city",
        "region": "130100",
    }
    assert event.recorded_at == REPORTED + HOUR_MS  # the receipt time: the receiving node's clock
    assert event.actor == {"user": "zhang", "node": "130100"}
    replayed = Aggregate.replay([event])
    assert isinstance(replayed, Receipt) and replayed.view() == agg.view()


def test_the_view_holds_the_tier_against_two_hours_per_tier():
    view = receive().view()
    assert view["kind"] == "receipt" and view["origin"] == "130100"
    assert {k: view[k] for k in ("reporting_tier", "tiers_above", "on_time")} == {
        "reporting_tier": "county",
        "tiers_above": 1,
        "on_time": True,
    }
    assert view["deadline"] == iso(REPORTED + 2 * HOUR_MS)
    assert view["received_at"] == iso(REPORTED + HOUR_MS)
    late = receive(after=timedelta(hours=5), region="130000", tier="province").view()
    assert (late["tiers_above"], late["deadline"], late["on_time"]) == (
        2,
        iso(REPORTED + 4 * HOUR_MS),
        False,
    )


def test_a_node_records_no_receipt_of_its_own_report_and_the_backup_none_at_all():
    with pytest.raises(Refused, match="reported by this node"):
        Receipt.record(command(origin="130100"), ctx(**CITY))
    with pytest.raises(Refused, match="backup"):
        Receipt.record(command(), ctx(region="000000", tier="backup"))


@pytest.mark.parametrize(
    ("origin", "tier", "n"),
    [
        ("130102", "city", 1),
        ("130102", "province", 2),
        ("130102", "national", 3),
        ("130100", "province", 1),
        ("130100", "national", 2),
        ("130000", "national", 1),
        ("429004", "province", 1),  # 仙桃市: a county directly under its province (no city)
        ("429004", "national", 2),
        ("130102", "county", None),  # not above the reporting node
        ("130100", "city", None),
        ("130102", "backup", None),
        ("county-a", "city", None),  # an origin that is not a division code: tier unknown
    ],
)
def test_tiers_above_the_reporting_node(origin, tier, n):
    assert tiers_above(origin, tier) == n


def test_origin_tiers_follow_the_division_code():
    assert [origin_tier(o) for o in ("130102", "130100", "130000", "000000", "x1")] == [
        "county",
        "city",
        "province",
        "national",
        None,
    ]


@pytest.mark.parametrize(
    ("received", "on_time"),
    [(2 * HOUR_MS - 1, True), (2 * HOUR_MS, True), (2 * HOUR_MS + 1, False)],
)
def test_the_deadline_is_met_at_or_before_it(received, on_time):
    j = judge("130102", REPORTED, "city", REPORTED + received)
    assert (j.deadline, j.on_time) == (REPORTED + 2 * HOUR_MS, on_time)
    unknown = judge("county-a", REPORTED, "city", REPORTED + received)
    assert (unknown.reporting_tier, unknown.deadline, unknown.on_time) == (None, None, None)
