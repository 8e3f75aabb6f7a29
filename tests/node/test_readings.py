"""Raw readings through the node: the local store, derived events in the log, summaries that
prove the stored readings, windows closed by the node's clock, retries and late readings,
crash recovery without doubles, snapshots, and retention."""

import hashlib
import sqlite3

import pytest

from domain.base import DAY_MS, to_ms
from domain.errors import Invalid
from domain.sensors.readings import WINDOW_MS
from node import config as config_mod
from node.errors import NotFound
from node.service import Node
from tests.factories import NOW, SITE_CODE, js, site

NOW_MS = to_ms(NOW)  # 08:00:00 on the node's clock: the window 07:55–08:00 is still open
T0 = NOW_MS - 3 * WINDOW_MS  # 07:45: windows 07:45 and 07:50 have closed


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


def summaries(node):
    return [
        e["payload"] for e in node.log.read(0, 1000) if e["event"] == "sensor.summary_recorded/1"
    ]


def test_readings_go_to_the_store_and_alarms_to_the_log(node, mine):
    before = node.status()["event_count"]
    r = node.ingest(
        SITE_CODE,
        batch(
            ("CH4-01", NOW_MS - 30_000, 0.3),
            ("CO-01", NOW_MS - 20_000, 5),
            ("CH4-01", NOW_MS - 10_000, 1.6),
        ),
        user="gw",
    )
    assert r["stored"] == 3 and r["events"] == ["sensor.alarm_raised/1", "sensor.power_cut/1"]
    assert node.status()["event_count"] == before + 2 and node.status()["raw_readings"] == 3
    shown = node.show(SITE_CODE, "site")
    assert (
        shown["active_alarms"] == ["CH4-01"]
        and shown["points"]["CH4-01"]["power_cut"]["value"] == "1.6000"
    )


def test_a_window_is_summarized_once_it_has_closed_and_its_hash_matches_the_store(
    node, mine, clock
):
    r = node.ingest(
        SITE_CODE,
        batch(
            ("CH4-01", T0 + 1, 0.31),
            ("CO-01", T0 + 2, 3),
            ("CH4-01", T0 + 3, 0.35),
            ("CH4-01", T0 + 60_000, 0.40),
        ),
        user="gw",
    )
    assert r["events"] == ["sensor.summary_recorded/1"]  # 07:45–07:50 ended over a minute ago
    open_window = NOW_MS - WINDOW_MS + 1
    assert node.ingest(SITE_CODE, batch(("CH4-01", open_window, 0.2)), user="gw")["events"] == []
    (p,) = summaries(node)
    assert (p["window_start"], p["window_end"], p["reading_count"]) == (T0, T0 + WINDOW_MS, 4)
    assert p["points"][0] == {
        "point": "CH4-01",
        "count": 3,
        "flagged": 0,
        "faulty": 0,  # values outside the point's measuring range (docs/domain.md §4.2)
        "min": 3100,
        "mean": 3533,
        "max": 4000,
    }
    # a late reading for the closed window is stored, and the summary stays provable:
    assert node.ingest(SITE_CODE, batch(("CO-01", T0 + 5, 4)), user="gw")["late"] == 1
    db = sqlite3.connect(node.config.readings_file)
    rows = db.execute(
        "SELECT point, t, value, status FROM readings WHERE site = ? AND t >= ? AND t < ?"
        " AND id BETWEEN ? AND ? ORDER BY id",
        (
            SITE_CODE,
            p["window_start"],
            p["window_end"],
            p["first_reading_id"],
            p["last_reading_id"],
        ),
    ).fetchall()
    lines = b"".join(f"{a}\t{b}\t{c}\t{d}\n".encode() for a, b, c, d in rows)
    assert len(rows) == 4 and hashlib.sha256(lines).hexdigest() == p["raw_sha256"]
    # the open window closes by the clock alone, when the node derives its sites
    clock.advance(WINDOW_MS + 60_000)
    assert node.derive_all() == {SITE_CODE: ["sensor.summary_recorded/1"]}
    assert [s["window_start"] for s in summaries(node)] == [T0, NOW_MS - WINDOW_MS]


def test_an_early_reading_does_not_close_the_window_for_the_others(node, mine):
    ahead = NOW_MS + 240_000  # a device clock four minutes ahead (within the allowed skew)
    node.ingest(SITE_CODE, batch(("CH4-01", ahead, 0.2)), user="gw")
    r = node.ingest(SITE_CODE, batch(("CO-01", NOW_MS - 1000, 30)), user="gw")
    assert r["late"] == 0 and r["events"] == ["sensor.alarm_raised/1"]
    assert summaries(node) == []


def test_a_retried_batch_is_stored_once(node, mine):
    body = batch(("CH4-01", T0, 0.3), ("CH4-01", T0 + 1000, 0.4))
    assert node.ingest(SITE_CODE, body, user="gw")["stored"] == 2
    again = node.ingest(SITE_CODE, body, user="gw")
    assert (again["stored"], again["duplicates"]) == (0, 2)
    assert summaries(node)[0]["reading_count"] == 2 and node.status()["raw_readings"] == 2


def test_a_crash_between_storing_and_deriving_is_recovered_once(node, mine):
    node.readings.append(
        SITE_CODE, [("CH4-01", T0, 16000, 0), ("CH4-01", T0 + WINDOW_MS, 100, 0)], 0
    )
    assert node.derive_all() == {
        SITE_CODE: [
            "sensor.alarm_raised/1",
            "sensor.power_cut/1",
            "sensor.power_restored/1",
            "sensor.alarm_cleared/1",
            "sensor.summary_recorded/1",
            "sensor.summary_recorded/1",
        ]
    }
    node.readings.mark(
        SITE_CODE, 0, {}
    )  # as if the crash came after the log write, before the mark
    node._cache.clear()
    assert node.derive(SITE_CODE)["events"] == []  # nothing doubled
    assert node.derive_all() == {SITE_CODE: []}


def test_a_large_site_starts_from_its_local_snapshot(node, mine, node_dir, clock):
    from node import config as config_mod
    from node.service import SNAPSHOT_EVERY, Node

    for i in range(SNAPSHOT_EVERY // 2 + 1):  # two events per round: alarm raised, cleared
        t = T0 + 2 * i * 1000
        node.ingest(SITE_CODE, batch(("CO-01", t, 30), ("CO-01", t + 1000, 1)), user="gw")
    kind, version, _ = node.readings.snapshot(mine)
    assert kind == "site" and version >= SNAPSHOT_EVERY
    other = Node(config_mod.load(node_dir, environ={}), clock=clock)
    assert other.show(mine) == node.show(mine)  # snapshot plus the events after it
    other.close()


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
        (batch(("CH4-01", T0, 1e20)), "readings.0.value"),
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
    point = js({"point_code": "CO-02", "sensor_type": "co"})
    other.execute("sensor.register-point", point, user="li", target=mine)
    other.close()
    r = node.ingest(SITE_CODE, batch(("CO-02", NOW_MS - 1000, 30)), user="gw")
    assert r["events"] == ["sensor.alarm_raised/1"]
    assert node.show(mine)["points"]["CO-02"]["alarm"]["value"] == "30.0"


def test_a_store_of_the_earlier_layout_is_taken_over_with_its_ids(tmp_path):
    """Readings stored before the compact layout (the codes in every row) are kept, with the
    ids that summaries and the derivation mark refer to."""
    from node.readings import ReadingsStore

    path = tmp_path / "readings.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL,
            point TEXT NOT NULL, t INTEGER NOT NULL, value INTEGER NOT NULL,
            status INTEGER NOT NULL, received_at INTEGER NOT NULL);
        CREATE UNIQUE INDEX readings_once ON readings (site, point, t);
        CREATE TABLE derived (site TEXT PRIMARY KEY, through_id INTEGER NOT NULL);
        INSERT INTO readings (site, point, t, value, status, received_at) VALUES
            ('S1', 'CH4-01', 1000, 3000, 0, 5), ('S2', 'CO-01', 1000, 4, 0, 5),
            ('S1', 'CH4-01', 2000, 3100, 4, 6);
        DELETE FROM readings WHERE id = 3;  -- pruned: the next id is still 4
        INSERT INTO derived VALUES ('S1', 1);
        """
    )
    db.close()
    store = ReadingsStore(path)
    try:
        assert [(r.id, r.point, r.t, r.value) for r in store.after("S1", 0)] == [
            (1, "CH4-01", 1000, 3000)
        ]
        assert store.sites() == ["S1", "S2"] and store.marked("S1") == 1
        assert store.append("S1", [("CH4-01", 1000, 3000, 0), ("CH4-02", 3000, 1, 0)], 7) == 1
        (new,) = [r.id for r in store.after("S1", 1)]
        assert new > 3  # ids only grow: 3 was pruned, never given again
        view = (
            sqlite3.connect(path)
            .execute("SELECT site, point, t FROM readings ORDER BY id")
            .fetchall()
        )
        assert view == [("S1", "CH4-01", 1000), ("S2", "CO-01", 1000), ("S1", "CH4-02", 3000)]
        assert store.prune(1500) == 2 and store.count() == 1
        seq = sqlite3.connect(path).execute("SELECT name, seq FROM sqlite_sequence").fetchall()
        assert seq == [("raw", new)]
    finally:
        store.close()
    reopened = ReadingsStore(path)  # and opened again: nothing to take over
    try:
        assert reopened.count() == 1
    finally:
        reopened.close()


def test_retention_also_drops_old_monitoring_files_kept_by_the_file_drop(node_dir, clock):
    import os

    with (node_dir / config_mod.CONFIG_FILE).open("a", encoding="utf-8") as f:
        f.write('\n[[hardware.filedrop]]\ndirectory = "drop"\n')
    for kept in ("done", "rejected"):
        (node_dir / "drop" / kept).mkdir(parents=True)
    old, new = node_dir / "drop" / "done" / "a.txt", node_dir / "drop" / "rejected" / "b.txt"
    for path in (old, new):
        path.write_text("x", "utf-8")
    days = 93 * 86_400
    os.utime(old, (clock.now_ms / 1000 - days, clock.now_ms / 1000 - days))
    (node_dir / "drop" / "c.txt").write_text("waiting", "utf-8")
    node = Node(config_mod.load(node_dir, environ={}), clock=clock)
    try:
        assert node.prune_readings()["files"] == 1
    finally:
        node.close()
    assert not old.exists() and new.exists() and (node_dir / "drop" / "c.txt").exists()


def test_a_methane_reading_of_minus_five_is_a_fault_kept_raw_and_left_out_of_the_summary(
    node, mine
):
    """docs/domain.md §4.2: stored in the raw store, a fault event in the log, no alarm, left
    out of min/mean/max (counted as faulty), cleared by the next value in range."""
    r = node.ingest(
        SITE_CODE,
        batch(
            ("CH4-01", T0 + 1, 0.31),
            ("CH4-01", T0 + 2, -5),
            ("CH4-01", T0 + 3, -5),
            ("CH4-01", T0 + 4, 0.35),
            ("CH4-01", T0 + 5, 4),  # the top of the range: a value (and an alarm, a cut)
        ),
        user="gw",
    )
    assert r["stored"] == 5 and node.status()["raw_readings"] == 5
    assert r["events"] == [
        "sensor.fault_detected/1",
        "sensor.fault_cleared/1",
        "sensor.alarm_raised/1",
        "sensor.power_cut/1",
        "sensor.summary_recorded/1",
    ]
    (p,) = summaries(node)
    assert p["reading_count"] == 5 and p["points"] == [
        {
            "point": "CH4-01",
            "count": 5,
            "flagged": 0,
            "faulty": 2,
            "min": 3100,
            "mean": 15533,  # (3100 + 3500 + 40000) / 3
            "max": 40000,
        }
    ]
    log = [e for e in node.log.read(0, 1000) if e["event"] == "sensor.fault_detected/1"]
    assert [(e["payload"]["value"], e["payload"]["side"]) for e in log] == [(-50000, "below")]
    assert node.show(SITE_CODE, "site")["active_faults"] == []


def test_faults_and_fan_cuts_are_excursions_in_the_projection(node, mine):
    from projections.queries import Filters

    point = {"point_code": "F-01", "sensor_type": "methane", "location": "series_heading_fan"}
    node.execute("sensor.register-point", js(point), user="zhang", target=mine)
    node.ingest(
        SITE_CODE,
        batch(
            ("CH4-01", NOW_MS - 5000, -5),
            ("F-01", NOW_MS - 5000, 1.6),
            ("CH4-01", NOW_MS - 4000, 0.3),
        ),
        user="gw",
    )
    node.project()
    history = node.query("excursions", Filters(as_of=NOW_MS))
    assert sorted((x["point"], x["kind"], x["ended_at"] is None) for x in history) == [
        ("CH4-01", "fault", False),
        ("F-01", "alarm", True),
        ("F-01", "fan_cut", True),
        ("F-01", "power_cut", True),
    ]
    active = node.query("alarms", Filters(as_of=NOW_MS))
    fan = next(x for x in active if x["kind"] == "fan_cut")
    assert (fan["threshold"], fan["start_value"]) == (15000, 16000)
