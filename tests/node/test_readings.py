"""Raw readings through the node: the local store, derived events in the log, summaries that
prove the stored readings, crash recovery without doubles, and retention."""

import hashlib
import json

import pytest

from domain.base import DAY_MS, to_ms
from domain.errors import Invalid
from domain.sensors.readings import WINDOW_MS
from node.errors import NotFound
from tests.factories import NOW, SITE_CODE, js, site

T0 = to_ms(NOW) - to_ms(NOW) % WINDOW_MS - 3 * WINDOW_MS  # three windows before the clock


@pytest.fixture
def mine(node):
    s = node.execute("sensor.register-site", js(site()), user="zhang")
    for body in (
        {"point_code": "CH4-01", "sensor_type": "methane", "location": "working_face"},
        {"point_code": "CO-01", "sensor_type": "co"},
    ):
        node.execute("sensor.register-point", js(body), user="zhang", target=s["id"])
    return s["id"]


def batch(*readings):
    return js({"readings": [{"point": p, "t": t, "value": v} for p, t, v in readings]})


def events(node):
    return [e["event"] for e in node.log.read(0, 1000)]


def test_readings_go_to_the_store_and_alarms_to_the_log(node, mine):
    before = node.status()["event_count"]
    r = node.ingest(
        SITE_CODE,
        batch(("CH4-01", T0, 0.3), ("CO-01", T0 + 10, 5), ("CH4-01", T0 + 10_000, 1.6)),
        user="gw",
    )
    assert r["stored"] == 3 and r["events"] == ["sensor.alarm_raised/1", "sensor.power_cut/1"]
    assert node.status()["event_count"] == before + 2 and node.status()["raw_readings"] == 3
    shown = node.show(SITE_CODE, "site")
    assert (
        shown["active_alarms"] == ["CH4-01"]
        and shown["points"]["CH4-01"]["power_cut"]["value"] == "1.6000"
    )


def test_each_closed_window_gets_one_summary_whose_hash_matches_the_store(node, mine):
    node.ingest(
        SITE_CODE,
        batch(("CH4-01", T0 + 1, 0.31), ("CO-01", T0 + 2, 3), ("CH4-01", T0 + 3, 0.35)),
        user="gw",
    )
    assert (
        node.ingest(SITE_CODE, batch(("CH4-01", T0 + 60_000, 0.40)), user="gw")["events"] == []
    )  # same window
    r = node.ingest(
        SITE_CODE, batch(("CH4-01", T0 + 2 * WINDOW_MS, 0.2)), user="gw"
    )  # skips a window
    assert r["events"] == ["sensor.summary_recorded/1"]
    (summary,) = [e for e in node.log.read(0, 1000) if e["event"] == "sensor.summary_recorded/1"]
    p = summary["payload"]
    assert (p["window_start"], p["window_end"], p["reading_count"]) == (T0, T0 + WINDOW_MS, 4)
    assert p["points"][0] == {
        "point": "CH4-01",
        "count": 3,
        "flagged": 0,
        "min": 3100,
        "mean": 3533,
        "max": 4000,
    }
    # an investigator recomputes the hash from the raw store alone
    import sqlite3

    db = sqlite3.connect(node.config.readings_file)
    rows = db.execute(
        "SELECT point, t, value, status FROM readings"
        " WHERE site = ? AND t >= ? AND t < ? ORDER BY id",
        (SITE_CODE, p["window_start"], p["window_end"]),
    ).fetchall()
    assert (
        hashlib.sha256(
            b"".join(f"{a}\t{b}\t{c}\t{d}\n".encode() for a, b, c, d in rows)
        ).hexdigest()
        == p["raw_sha256"]
    )
    # a reading for the summarized window is refused, nothing stored
    with pytest.raises(Invalid, match="already summarized"):
        node.ingest(SITE_CODE, batch(("CH4-01", T0 + 5, 0.3)), user="gw")
    assert node.status()["raw_readings"] == 5


def test_a_crash_between_storing_and_deriving_is_recovered_once(node, mine):
    node.readings.append(
        SITE_CODE, [("CH4-01", T0, 16000, 0), ("CH4-01", T0 + WINDOW_MS, 100, 0)], 0
    )
    assert node.recover_readings() == [SITE_CODE]
    derived = [
        e for e in events(node) if e.startswith("sensor.") and "point" not in e and "site" not in e
    ]
    assert derived == [
        "sensor.alarm_raised/1",
        "sensor.power_cut/1",
        "sensor.power_restored/1",
        "sensor.alarm_cleared/1",
        "sensor.summary_recorded/1",
    ]
    node.readings.mark(SITE_CODE, 0)  # as if the crash came after the log write, before the mark
    node._cache.clear()
    assert node.derive(SITE_CODE)["events"] == []  # nothing doubled
    assert node.recover_readings() == []


def test_retention_drops_old_readings_and_never_touches_the_log(node, mine, clock):
    node.ingest(SITE_CODE, batch(("CH4-01", T0, 1.2), ("CH4-01", T0 + WINDOW_MS, 0.2)), user="gw")
    log_before = node.log.read(0, 1000)
    clock.now_ms = T0 + 92 * DAY_MS
    assert node.prune_readings()["pruned"] == 0  # exactly at the retention age: kept
    clock.advance(1)
    assert node.prune_readings()["pruned"] == 1
    clock.advance(WINDOW_MS)
    assert node.prune_readings()["pruned"] == 1
    assert node.status()["raw_readings"] == 0 and node.log.read(0, 1000) == log_before


def test_bad_batches_store_nothing(node, mine):
    for body, field in [
        (batch(("NOPE", T0, 0.1)), "readings.0.point"),
        (batch(("CH4-01", T0, "abc")), "readings.0.value"),
        (js({"readings": []}), "readings"),
        (
            js({"readings": [{"point": "CH4-01", "t": T0, "value": 1, "extra": 1}]}),
            "readings.0.extra",
        ),
        ("{", "*"),
    ]:
        with pytest.raises(Invalid) as e:
            node.ingest(SITE_CODE, body, user="gw")
        assert e.value.errors[0].field == field, body
    with pytest.raises(NotFound, match="no monitoring site"):
        node.ingest("UNKNOWN", batch(("CH4-01", T0, 0.1)), user="gw")
    assert node.status()["raw_readings"] == 0


def test_a_registration_written_by_another_process_is_seen_by_the_cached_site(
    node, mine, node_dir, clock
):
    from node import config as config_mod
    from node.service import Node

    node.ingest(SITE_CODE, batch(("CH4-01", T0, 0.1)), user="gw")  # the site is now cached
    other = Node(config_mod.load(node_dir, environ={}), clock=clock)
    other.execute(
        "sensor.register-point",
        js({"point_code": "CO-02", "sensor_type": "co"}),
        user="li",
        target=mine,
    )
    other.close()
    r = node.ingest(SITE_CODE, batch(("CO-02", T0 + 1, 30)), user="gw")
    assert r["events"] == ["sensor.alarm_raised/1"]
    assert json.loads(json.dumps(node.show(mine)))["points"]["CO-02"]["alarm"]["value"] == "30.0"
