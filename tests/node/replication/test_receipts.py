"""A tier's node records its own signed receipt of each accident report that reaches it from
below: once per accident, in one transaction, never of its own reports, none at a backup."""

from datetime import timedelta

import pytest

from domain.base import HOUR_MS, to_ms
from domain.errors import Invalid
from domain.receipt import receipt_id
from federation.envelope import parse
from node import config as config_mod
from node.replication.receipts import record_receipts
from node.service import Node
from projections.queries import Filters
from tests.conftest import Clock, make_node_dir
from tests.factories import NOW, accident, credit_code, js

REPORTS = ("accident.reported/1", "accident.near_miss_reported/1")


def node_at(tmp_path, tier, region, after=timedelta(0)):
    directory = make_node_dir(tmp_path / f"{tier}-{region}", tier=tier, region=region)
    return Node(config_mod.load(directory, environ={}), clock=Clock(to_ms(NOW + after)))


def reports_of(node):
    """The (accident id, origin, seq, recorded_at) of each report in a node's own envelopes,
    as the importer reads them from the envelopes it applies."""
    envelopes = [parse(raw) for raw in node.log.envelopes()]
    return [(e.aggregate, e.origin, e.seq, e.at) for e in envelopes if e.type in REPORTS]


@pytest.fixture
def county(tmp_path):
    n = node_at(tmp_path, "county", "130102")
    n.execute("accident.report", js(accident(deaths=1)), user="clerk")
    n.clock.advance(60_000)
    n.execute(
        "accident.report",
        js(accident(enterprise_credit_code=credit_code(2), direct_loss_yuan=5)),
        user="clerk",
    )
    yield n
    n.close()


@pytest.fixture
def city(tmp_path):
    n = node_at(tmp_path, "city", "130100", after=timedelta(hours=1))
    yield n
    n.close()


def test_receipts_are_recorded_once_in_one_transaction(county, city):
    reports = reports_of(county)
    assert [(r[1], r[2]) for r in reports] == [("130102", 1), ("130102", 2)]
    before = city.log.last_position()
    assert record_receipts(city, reports + reports[:1]) == 2  # a report twice: one receipt
    entries = city.log.read(before, 100)
    assert [e["event"] for e in entries] == ["accident.receipt_recorded/1"] * 2
    assert city.log.tree()[0] == 2  # two signed envelopes of its own
    assert {e["aggregate_id"] for e in entries} == {
        str(receipt_id("130100", r[0])) for r in reports
    }
    # one transaction: consecutive positions, one recording time, the federation as actor
    assert [e["position"] for e in entries] == [before + 1, before + 2]
    assert {e["recorded_at"] for e in entries} == {to_ms(NOW) + HOUR_MS}
    assert all(e["actor"] == {"user": "federation", "node": "130100"} for e in entries)
    first = entries[0]["payload"]
    assert first == {
        "accident_id": reports[0][0],
        "reporting_origin": "130102",
        "reporting_seq": 1,
        "report_recorded_at": reports[0][3],
        "tier": "city",
        "region": "130100",
    }


def test_recording_again_records_nothing(county, city):
    reports = reports_of(county)
    assert record_receipts(city, reports[:1]) == 1
    city.clock.advance(HOUR_MS)
    assert record_receipts(city, reports[:1]) == 0
    assert record_receipts(city, reports) == 1  # only the one not yet received
    assert record_receipts(city, reports) == 0
    assert city.status()["event_count"] == 2
    view = city.show(str(receipt_id("130100", reports[0][0])))
    assert view["received_at"] == "2026-11-29T17:00:00+08:00"  # the first receipt stands
    assert view["on_time"] is True


def test_own_reports_are_skipped(county, city):
    city.execute("accident.report", js(accident(division="130102")), user="clerk")
    own = reports_of(city)
    assert [r[1] for r in own] == ["130100"]
    assert record_receipts(city, own) == 0
    assert record_receipts(city, []) == 0
    assert record_receipts(city, own + reports_of(county)) == 2
    assert city.status()["event_count"] == 3


def test_a_backup_node_records_no_receipts(tmp_path, county):
    backup = node_at(tmp_path, "backup", "000000")
    assert record_receipts(backup, reports_of(county)) == 0
    assert backup.status()["event_count"] == 0
    backup.close()


def test_a_report_that_cannot_be_read_records_nothing(county, city):
    good = reports_of(county)
    with pytest.raises(Invalid, match="accident_id"):
        record_receipts(city, [*good, ("not-an-id", "130102", 3, 0)])
    with pytest.raises(Invalid, match="reporting_seq"):
        record_receipts(city, [*good, (good[0][0], "130104", 0, 0)])
    assert city.status()["event_count"] == 0


def test_the_city_register_shows_a_receipt_whose_report_it_does_not_hold(county, city):
    """The report stays in the county's log here: the city's view shows the receipt, judged
    from the report's time it carries, with the accident's place unknown."""
    record_receipts(city, reports_of(county)[:1])
    city.project()
    [row] = city.query("accident-receipts", Filters(region="130100"))
    assert row["report_held"] == 0 and row["division"] is None
    assert (row["tier"], row["tiers_above"], row["on_time"], row["minutes_late"]) == (
        "city",
        1,
        1,
        0,
    )
    assert row["deadline"] == to_ms(NOW) + 2 * HOUR_MS
    assert city.query("accident-receipts", Filters(region="130400")) == []


def test_the_digest_changes_when_a_receipt_is_recorded(county, city):
    reports = reports_of(county)
    record_receipts(city, reports[:1])
    city.project()
    before = city._projector.store.digest()
    record_receipts(city, reports[1:])
    city.project()
    after = city._projector.store.digest()
    assert after["accident_receipts"] != before["accident_receipts"]
    assert after["all"] != before["all"]
    assert after["accidents"] == before["accidents"]
