"""The registers' queries on hand-made rows: one line per accident however many bureaus
investigate it, alarms only at points in service, the latest licence of an enterprise without
a valid one, and region digests that reach the sensor tables through their site."""

import pytest

from projections.base import chain
from projections.queries import Filters, run
from projections.store import ProjectionStore

DAY = 86_400_000
AS_OF = 1_000 * DAY


@pytest.fixture
def store(tmp_path):
    s = ProjectionStore(tmp_path / "p.db")
    yield s
    s.close()


def accident(id, division="130102"):
    return {"id": id, "origin": division, "occurred_at": 1, "grade": "major", "voided": 0} | chain(
        division
    )


def test_an_accident_investigated_by_two_tiers_is_one_line_with_the_higher_tier(store):
    store.db["accidents"].insert_all([accident("a1"), accident("a2")])
    store.db["investigations"].insert_all(
        [
            {"id": "i1", "accident_id": "a1", "tier": "city", "state": "closed", "voided": 0},
            {"id": "i2", "accident_id": "a1", "tier": "province", "state": "replied", "voided": 0},
            {"id": "i3", "accident_id": "a2", "tier": "province", "state": "opened", "voided": 1},
        ]
    )
    rows = run(store.db, "accidents", Filters(as_of=AS_OF))
    assert sorted((r["id"], r["investigation"]) for r in rows) == [
        ("a1", "replied"),
        ("a2", "none"),
    ]


def test_alarms_leave_out_retired_points_and_voided_sites(store):
    store.db["sites"].insert_all(
        [
            {"id": "s1", "origin": "130102", "site_code": "A", "voided": 0} | chain("130102"),
            {"id": "s2", "origin": "130102", "site_code": "B", "voided": 1} | chain("130102"),
        ]
    )
    store.db["points"].insert_all(
        [
            {"key": "s1:CH4", "site_id": "s1", "point": "CH4", "retired": 0},
            {"key": "s1:CO", "site_id": "s1", "point": "CO", "retired": 1},
            {"key": "s2:CH4", "site_id": "s2", "point": "CH4", "retired": 0},
        ]
    )
    store.db["excursions"].insert_all(
        [
            {"key": f"{p}:1", "site_id": p.split(":")[0], "point": p.split(":")[1]}
            | {"kind": "alarm", "started_at": 1}
            for p in ("s1:CH4", "s1:CO", "s2:CH4")
        ]
    )
    rows = run(store.db, "alarms", Filters(as_of=AS_OF))
    assert [(r["site_code"], r["point"]) for r in rows] == [("A", "CH4")]
    assert len(run(store.db, "excursions", Filters(as_of=AS_OF))) == 3  # history keeps all

    whole = store.digest()
    other = store.digest("130400")
    mine = store.digest("130102")
    assert mine["points"] == whole["points"] != other["points"]
    assert mine["excursions"] == whole["excursions"] != other["excursions"]


def test_unlicensed_shows_the_latest_licence_of_those_without_a_valid_one(store):
    def enterprise(id):
        return {"id": id, "origin": "130102", "name": id, "credit_code": id}

    store.db["enterprises"].insert_all(
        [
            enterprise(e) | {"industry": "coal_mine", "closed": 0, "voided": 0} | chain("130102")
            for e in ("lapsed", "valid", "none")
        ]
    )

    def licence(id, enterprise, status, applied, until):
        return {
            "id": id,
            "origin": "130000",
            "enterprise_id": enterprise,
            "status": status,
            "number": id,
            "valid_from": applied,
            "valid_until": until,
            "applied_at": applied,
            "voided": 0,
            "industry": "coal_mine",
        } | chain("130102")

    store.db["licences"].insert_all(
        [
            licence("old", "lapsed", "issued", 10 * DAY, 500 * DAY),
            licence("newer", "lapsed", "suspended", 600 * DAY, 2000 * DAY),
            licence("ok", "valid", "issued", 900 * DAY, 2000 * DAY),
            licence("later", "none", "issued", 1500 * DAY, 3000 * DAY),  # not yet applied
        ]
    )
    rows = run(store.db, "unlicensed", Filters(as_of=AS_OF))
    assert sorted((r["id"], r["licence_id"], r["status"]) for r in rows) == [
        ("lapsed", "newer", "suspended"),
        ("none", None, None),
    ]


def test_digest_regions_follow_division_codes_not_trailing_zeros(store):
    """130100 is Shijiazhuang: its digest holds 1301xx only, never 1310xx (which a naive
    strip of trailing zeros, 1301 → '1301%', handles; 131000 → '131%' would not)."""
    store.db["accidents"].insert_all([accident("a", "131002"), accident("b", "131102")])
    langfang = store.digest("131000")
    only_a = ProjectionStore(store.path.with_name("q.db"))
    only_a.db["accidents"].insert_all([accident("a", "131002")])
    assert langfang["accidents"] == only_a.digest()["accidents"]
    only_a.close()


def test_months_are_counted_in_china_time():
    from datetime import UTC, datetime

    from domain.base import to_ms
    from projections.base import month

    assert month(to_ms(datetime(2026, 10, 31, 15, 59, tzinfo=UTC))) == "2026-10"
    assert month(to_ms(datetime(2026, 10, 31, 16, 0, tzinfo=UTC))) == "2026-11"  # 00:00 CST
