import uuid
from datetime import timedelta

import pytest

from domain.base import EVENT_TYPES, HOUR_MS, Aggregate, iso, to_ms
from domain.errors import Refused
from domain.grading import Grade
from domain.receipt import (
    RECEIPT_NAMESPACE,
    Arrival,
    Receipt,
    ReceiptRecorded,
    RecordReceipt,
    expected_receipts,
    judge,
    judge_all,
    origin_tier,
    receipt_id,
    report_chain,
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


def test_the_view_holds_the_first_tier_against_two_hours_and_names_the_clock_of_the_next():
    view = receive().view()
    assert view["kind"] == "receipt" and view["origin"] == "130100"
    assert {k: view[k] for k in ("reporting_tier", "tiers_above", "due_from", "on_time")} == {
        "reporting_tier": "county",
        "tiers_above": 1,
        "due_from": "130102",  # the report itself starts the first tier's 2 hours
        "on_time": True,
    }
    assert view["deadline"] == iso(REPORTED + 2 * HOUR_MS)
    assert view["received_at"] == iso(REPORTED + HOUR_MS)
    # the province's 2 hours start at the city's receipt, which the receipt alone does not hold:
    # the register judges it (accident-receipts)
    late = receive(after=timedelta(hours=5), region="130000", tier="province").view()
    assert (late["tiers_above"], late["due_from"], late["deadline"], late["on_time"]) == (
        2,
        "130100",
        None,
        None,
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


# -- each tier passes the report on within 2 hours of its own receipt (Art. 11) ----------------

MIN = 60_000


def onward(*arrivals, origin="130102"):
    """Judge arrivals (tier, region, ms after the report) of one report, in that order."""
    return judge_all(
        origin,
        REPORTED,
        [Arrival(tier, REPORTED + after, region) for tier, region, after in arrivals],
    )


@pytest.mark.parametrize(
    ("after_city", "on_time"),
    [(2 * HOUR_MS - 1, True), (2 * HOUR_MS, True), (2 * HOUR_MS + MIN, False)],
)
def test_an_onward_report_is_due_two_hours_after_the_tier_below_received_it(after_city, on_time):
    city, province = onward(
        ("city", "130100", 30 * MIN), ("province", "130000", 30 * MIN + after_city)
    )
    assert (city.due_from, city.deadline, city.on_time) == ("130102", REPORTED + 2 * HOUR_MS, True)
    assert (province.tiers_above, province.due_from, province.due_from_at) == (
        2,
        "130100",
        REPORTED + 30 * MIN,
    )
    assert (province.deadline, province.on_time) == (REPORTED + 150 * MIN, on_time)


def test_a_fast_tier_leaves_nothing_to_the_next():
    """The city took 10 minutes: the province still has 2 hours from the city's receipt, not
    the 4 hours from the report the old cumulative reading gave."""
    _, province = onward(("city", "130100", 10 * MIN), ("province", "130000", 3 * HOUR_MS))
    assert (province.deadline, province.on_time) == (REPORTED + 130 * MIN, False)


def test_a_tier_with_no_receipt_keeps_its_two_hours():
    """越级上报, or the city's receipt not held here: the province is held against the report,
    2 hours for each tier between; a receipt of the tier below recorded after this one did not
    bring the report here and starts no clock."""
    (alone,) = onward(("province", "130000", 4 * HOUR_MS))
    assert (alone.due_from, alone.deadline, alone.on_time) == (
        "130102",
        REPORTED + 4 * HOUR_MS,
        True,
    )
    province, city = onward(("province", "130000", 4 * HOUR_MS), ("city", "130100", 5 * HOUR_MS))
    assert (province.due_from, province.on_time) == ("130102", True)
    assert (city.due_from, city.on_time) == ("130102", False)
    *_, national = onward(
        ("city", "130100", HOUR_MS),
        ("national", "000000", 5 * HOUR_MS),  # no province receipt
    )
    assert (national.due_from, national.deadline, national.on_time) == (
        "130100",
        REPORTED + 5 * HOUR_MS,
        True,
    )


def test_the_judgement_does_not_depend_on_the_order_of_the_receipts():
    arrivals = [("city", "130100", HOUR_MS), ("province", "130000", 3 * HOUR_MS + MIN)]
    forward = onward(*arrivals)
    backward = onward(*reversed(arrivals))
    assert forward == list(reversed(backward))
    assert [j.on_time for j in forward] == [True, False]


def test_a_county_directly_under_its_province_reports_to_the_province_in_two_hours():
    """济源 (419001) has no city: its report's first tier is the province, due 2 hours after the
    county recorded it; no city receipt is expected."""
    assert report_chain("419001") == ["419001", "410000", "000000"]
    assert tiers_above("419001", "province") == 1 and tiers_above("419001", "city") is None
    (province,) = onward(("province", "410000", 2 * HOUR_MS), origin="419001")
    assert (province.tiers_above, province.due_from, province.deadline, province.on_time) == (
        1,
        "419001",
        REPORTED + 2 * HOUR_MS,
        True,
    )
    (late,) = onward(("province", "410000", 2 * HOUR_MS + MIN), origin="419001")
    assert late.on_time is False
    assert expected_receipts("419001", "419001", Grade.GENERAL) == ["410000"]
    assert expected_receipts("419001", "419001", Grade.MAJOR) == ["410000", "000000"]


def test_a_city_without_counties_receives_the_units_report_itself():
    """东莞 (441900): the city records the report; a 一般 accident has then reached the tier it
    must reach, a 较大 one must reach the province, the first tier above."""
    assert report_chain("441900") == ["441900", "440000", "000000"]
    assert expected_receipts("441900", "441900", Grade.GENERAL) == []
    assert expected_receipts("441900", "441900", Grade.LARGER) == ["440000"]
    (province,) = onward(("province", "440000", HOUR_MS), origin="441900")
    assert (province.tiers_above, province.deadline) == (1, REPORTED + 2 * HOUR_MS)


def test_the_tiers_a_report_must_reach_follow_the_chain():
    assert expected_receipts("130102", "130102", Grade.GENERAL) == ["130100"]
    assert expected_receipts("130102", "130102", Grade.LARGER) == ["130100", "130000"]
    assert expected_receipts("130102", "130102", Grade.NEAR_MISS) == ["130100", "130000"]
    assert expected_receipts("130102", "130102", Grade.ESPECIALLY_MAJOR) == [
        "130100",
        "130000",
        "000000",
    ]
    # a city that recorded a 一般 accident in one of its counties: nothing above is required
    assert expected_receipts("130100", "130102", Grade.GENERAL) == []
    assert expected_receipts("county-a", "130102", Grade.GENERAL) == []
