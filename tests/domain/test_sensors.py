import hashlib
from decimal import Decimal

import pytest

from domain.base import to_ms
from domain.errors import Invalid, Refused
from domain.sensors.readings import WINDOW_MS, Reading, digest, statistics
from domain.sensors.site import ChangeThresholds, ReadingBatch, RegisterPoint, RegisterSite, Site
from domain.sensors.thresholds import METHANE_DEFAULTS, Location, scaled, unscaled
from tests.factories import NOW, ctx, js, site

T0 = to_ms(NOW) - to_ms(NOW) % WINDOW_MS


def new_site(*points: dict) -> Site:
    s = Site.register(RegisterSite.model_validate_json(js(site())), ctx())
    for p in points:
        s.register_point(RegisterPoint.model_validate_json(js(p)), ctx())
    s.collect_events()
    return s


class Feed:
    """Readings for one point, with store ids, fed one at a time."""

    def __init__(self, s: Site, point: str) -> None:
        self.site, self.point, self.next_id, self.latest = s, point, 1, {}

    def __call__(self, *values: str) -> list[str]:
        readings = []
        for v in values:
            scale = self.site.points[self.point]["scale"]
            readings.append(
                Reading(self.next_id, self.point, T0 + self.next_id * 1000, scaled(v, scale))
            )
            self.next_id += 1
        self.site.observe(readings, ctx(), self.latest)
        return [e.NAME.split(".")[1].split("/")[0] for e in self.site.collect_events()]


@pytest.mark.parametrize("location", list(Location))
def test_a_methane_excursion_at_each_location_of_the_table(location):
    th = METHANE_DEFAULTS[location]
    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": location.value})
    feed = Feed(s, "CH4")
    level = lambda x: unscaled(x, 4)  # noqa: E731
    assert feed("0.10", level(th.alarm - 1)) == []
    at_alarm = feed(level(th.alarm))
    expected = ["alarm_raised"] + (["power_cut"] if th.power_cut == th.alarm else [])
    assert at_alarm == expected
    if th.power_cut is not None and th.power_cut > th.alarm:
        assert feed(level(th.power_cut - 1)) == []
        assert feed(level(th.power_cut)) == ["power_cut"]
    assert feed(level((th.power_cut or th.alarm) + 5000)) == []  # still high: nothing new
    if th.restore is not None:
        assert feed(level(th.restore)) == []  # at the restore level: power stays cut
        assert feed(level(th.restore - 1)) == ["power_restored", "alarm_cleared"]
    else:
        assert feed(level(th.alarm - 1)) == ["alarm_cleared"]
    assert feed("0.05") == []
    assert s.view()["active_alarms"] == [] and s.view()["active_power_cuts"] == []


def test_upper_corner_power_stays_cut_until_below_restore_even_when_the_alarm_persists():
    s = new_site({"point_code": "UC", "sensor_type": "methane", "location": "upper_corner"})
    feed = Feed(s, "UC")
    assert feed("1.60") == ["alarm_raised", "power_cut"]
    assert feed("1.20", "1.00") == []  # between restore and cut: alarm and cut persist
    assert s.view()["active_power_cuts"] == ["UC"]
    assert feed("0.99") == ["power_restored", "alarm_cleared"]


def test_co_alarm_at_24_ppm_without_power_cut():
    s = new_site({"point_code": "CO1", "sensor_type": "co"})
    feed = Feed(s, "CO1")
    assert feed("23.9", "24") == ["alarm_raised"]
    assert feed("30", "23.9") == ["alarm_cleared"]


def test_lower_limits_mirror_the_comparisons():
    s = new_site(
        {
            "point_code": "O2",
            "sensor_type": "o2",
            "thresholds": {"alarm": "18.5", "power_cut": "18.0", "restore": "19.0", "lower": True},
        }
    )
    feed = Feed(s, "O2")
    assert feed("20.9", "18.6") == []
    assert feed("18.5") == ["alarm_raised"]
    assert feed("18.0") == ["power_cut"]
    assert feed("19.0") == ["alarm_cleared"]  # above the alarm level, not yet above restore
    assert feed("19.1") == ["power_restored"]


def test_calibration_and_faulty_readings_raise_nothing():
    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})
    s.observe(
        [Reading(1, "CH4", T0, 30000, status=4), Reading(2, "CH4", T0 + 1, 30000, status=128)],
        ctx(),
        {},
    )
    assert s.collect_events() == []


def test_readings_already_reflected_in_events_are_skipped_after_a_restart():
    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})
    batch = [Reading(1, "CH4", T0, 16000), Reading(2, "CH4", T0 + 1000, 5000)]
    s.observe(batch, ctx(), {})
    first = [e.NAME for e in s.collect_events()]
    s.observe(batch, ctx(), {})  # the same stored readings derived again (after a crash)
    assert len(first) == 4 and s.collect_events() == []


def test_summary_statistics_and_digest():
    rows = [
        Reading(1, "A", T0, 10),
        Reading(2, "B", T0 + 1, 7),
        Reading(3, "A", T0 + 2, 15),
        Reading(4, "A", T0 + 3, 99, status=4),
    ]
    assert statistics(rows) == [
        # 12.5 → 12; "faulty": values outside the point's range (none given here)
        {"point": "A", "count": 3, "flagged": 1, "faulty": 0, "min": 10, "mean": 12, "max": 15},
        {"point": "B", "count": 1, "flagged": 0, "faulty": 0, "min": 7, "mean": 7, "max": 7},
    ]
    lines = b"A\t%d\t10\t0\nB\t%d\t7\t0\nA\t%d\t15\t0\nA\t%d\t99\t4\n" % (
        T0,
        T0 + 1,
        T0 + 2,
        T0 + 3,
    )
    assert digest(rows) == hashlib.sha256(lines).hexdigest()
    s = new_site({"point_code": "A", "sensor_type": "co"}, {"point_code": "B", "sensor_type": "co"})
    assert s.summarize(T0, rows, ctx()) is True
    assert s.summarize(T0, rows, ctx()) is False  # once per window
    (event,) = s.collect_events()
    assert event.payload()["raw_sha256"] == digest(rows) and s.summarized_until == T0 + WINDOW_MS


def test_batches_are_checked_before_anything_is_stored():
    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})
    s.summarized_until = T0
    readings = [
        {"point": "CH4", "t": T0 + 5, "value": 0.5},
        {"point": "XX", "t": T0 + 6, "value": 0.5},
        {"point": "CH4", "t": T0 - 1, "value": 0.5},  # late for a summarized window: taken
        {"point": "CH4", "t": to_ms(NOW) + 3_600_000, "value": 0.5},
        {"point": "CH4", "t": T0 + 7, "value": "1e400"},
        {"point": "CH4", "t": T0 + 8, "value": 1e20},
    ]
    with pytest.raises(Invalid) as e:
        s.accept(ReadingBatch.model_validate_json(js({"readings": readings})), ctx())
    assert [f.field for f in e.value.errors] == [
        "readings.1.point",
        "readings.3.t",
        "readings.4.value",
        "readings.5.value",
    ]
    ok = ReadingBatch.model_validate_json(
        js(
            {
                "readings": [
                    {"point": "CH4", "t": T0 + 9, "value": "0.75"},
                    {"point": "CH4", "t": T0 + 5, "value": 0.00005},
                ]
            }
        )
    )
    assert s.accept(ok, ctx()) == [
        ("CH4", T0 + 5, 0, 0),
        ("CH4", T0 + 9, 7500, 0),
    ]  # sorted; half-even


def test_a_late_reading_is_history_not_the_current_state():
    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})
    latest: dict = {}
    s.observe([Reading(1, "CH4", T0 + 20_000, 3000)], ctx(), latest)
    s.observe([Reading(2, "CH4", T0 + 10_000, 16000)], ctx(), latest)  # arrives after, older
    assert s.collect_events() == [] and latest == {"CH4": T0 + 20_000}
    s.observe(
        [Reading(4, "CH4", T0 + 31_000, 3000), Reading(3, "CH4", T0 + 30_000, 16000)], ctx(), latest
    )
    names = [e.NAME for e in s.collect_events()]  # one batch is taken in time order
    assert names == [
        "sensor.alarm_raised/1",
        "sensor.power_cut/1",
        "sensor.power_restored/1",
        "sensor.alarm_cleared/1",
    ]


def test_a_retired_point_has_no_active_alarm():
    from domain.sensors.site import RetirePoint

    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})
    s.observe([Reading(1, "CH4", T0, 16000)], ctx(), {})
    retire = {"point_code": "CH4", "reason": "传感器拆除"}
    s.retire_point(RetirePoint.model_validate_json(js(retire)), ctx())
    assert s.view()["active_alarms"] == [] and s.view()["active_power_cuts"] == []


def test_values_are_rounded_half_even_in_the_point_scale():
    assert (
        scaled("0.75", 4) == 7500
        and scaled(Decimal("0.00015"), 4) == 2
        and scaled("0.00025", 4) == 2
    )
    with pytest.raises(ValueError, match="finite"):
        scaled("Infinity", 4)
    for bad in ("1e400", "1e20", "abc"):
        with pytest.raises(ValueError):
            scaled(bad, 4)


def test_point_rules():
    s = new_site({"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})
    with pytest.raises(Refused, match="already registered"):
        s.register_point(
            RegisterPoint.model_validate_json(js({"point_code": "CH4", "sensor_type": "co"})), ctx()
        )
    with pytest.raises(Invalid, match="location"):
        s.register_point(
            RegisterPoint.model_validate_json(js({"point_code": "M2", "sensor_type": "methane"})),
            ctx(),
        )
    bad = {
        "point_code": "P",
        "sensor_type": "co",
        "thresholds": {"alarm": "30", "power_cut": "20", "restore": "10"},
    }
    with pytest.raises(Invalid, match="must not come before the alarm"):
        s.register_point(RegisterPoint.model_validate_json(js(bad)), ctx())
    change = {
        "point_code": "CH4",
        "thresholds": {"alarm": "0.8", "power_cut": "1.2", "restore": "0.8"},
        "reason": "矿井升级为高瓦斯矿井",
        "expected_version": s.version,
    }
    s.change_thresholds(ChangeThresholds.model_validate_json(js(change)), ctx())
    assert s.points["CH4"]["thresholds"] == {
        "alarm": 8000,
        "power_cut": 12000,
        "restore": 8000,
        "lower": False,
    }
    assert s.view()["points"]["CH4"]["thresholds"]["alarm"] == "0.8000"
