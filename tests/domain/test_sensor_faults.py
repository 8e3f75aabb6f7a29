"""Sensor faults and the other gases (docs/domain.md §4.1–§4.2): a value outside the point's
measuring range is a fault, recorded once, cleared by the next value inside it, left out of the
summary's min/mean/max and of the threshold checks on its harmless side; the defaults of O2,
CO2, NO2, SO2, H2S, NH3 and temperature at coal mines, each at its boundary; the second level of
a series-ventilated heading; and points without defaults refused without their own."""

import pytest

from domain.errors import Invalid
from domain.sensors.excursions import FaultDetected
from domain.sensors.readings import Reading, statistics
from domain.sensors.site import (
    ChangeThresholds,
    PointRegistered,
    RegisterPoint,
    RegisterSite,
    Site,
)
from domain.sensors.thresholds import DEFAULT_RANGES, Range, SensorType, scaled
from tests.domain.test_sensors import T0, Feed, new_site
from tests.factories import ctx, js, site

CH4 = {"point_code": "CH4", "sensor_type": "methane", "location": "working_face"}
WIDE = {"low": "0", "high": "100"}  # a measuring range given with the point


def register(s: Site, body: dict) -> None:
    s.register_point(RegisterPoint.model_validate_json(js(body)), ctx())


# -- faults -----------------------------------------------------------------------------------


def test_minus_five_percent_methane_is_a_fault_cleared_by_the_next_value_in_range():
    s = new_site(CH4)
    feed = Feed(s, "CH4")
    assert feed("0.30") == []
    assert feed("-5") == ["fault_detected"]  # no alarm, no power cut
    assert s.view()["active_faults"] == ["CH4"] and s.view()["active_alarms"] == []
    assert s.view()["points"]["CH4"]["fault"]["value"] == "-5.0000"
    assert feed("-5", "-0.0001") == []  # still faulty: recorded once
    assert feed("0.00") == ["fault_cleared"]  # the low end itself is a value
    assert s.view()["active_faults"] == []


def test_the_fault_event_names_the_side_and_the_end_of_the_range():
    s = new_site(CH4)
    s.observe([Reading(7, "CH4", T0, scaled("-5", 4))], ctx(), {})
    (event,) = s.collect_events()
    assert isinstance(event, FaultDetected)
    assert (event.side, event.bound, event.value, event.reading_id) == ("below", 0, -50000, 7)


def test_values_just_inside_the_range_are_values():
    s = new_site(CH4)
    feed = Feed(s, "CH4")
    assert feed("0") == []
    assert feed("4.00") == ["alarm_raised", "power_cut"]  # the top of the range: a value
    assert s.view()["active_faults"] == []
    assert feed("0.99") == ["power_restored", "alarm_cleared"]


def test_a_faulty_reading_raises_no_alarm_and_clears_none():
    s = new_site(CH4)
    feed = Feed(s, "CH4")
    assert feed("1.60") == ["alarm_raised", "power_cut"]
    assert feed("-5") == ["fault_detected"]  # below the range: not a low concentration
    assert s.view()["active_alarms"] == ["CH4"] and s.view()["active_power_cuts"] == ["CH4"]
    assert feed("1.20") == ["fault_cleared"]  # a value again: the cut stays until < 1.0
    assert feed("0.90") == ["power_restored", "alarm_cleared"]


def test_a_value_above_the_range_counts_as_the_top_of_the_range():
    """Deviation from "no threshold check for a fault" (docs/domain.md §4.2): methane past the
    top of a 0–4 % sensor is at least 4 % (an outburst) or a sensor the monitoring system must
    treat so (故障闭锁); it raises the alarm and the power cut, and never clears them."""
    s = new_site(CH4)
    feed = Feed(s, "CH4")
    assert feed("0.30") == []
    assert feed("5.00") == ["fault_detected", "alarm_raised", "power_cut"]
    alarm = s.view()["points"]["CH4"]["alarm"]
    assert alarm["value"] == "5.0000"  # the value read, not the end of the range
    assert feed("9", "4.01") == []
    assert feed("0.10") == ["fault_cleared", "power_restored", "alarm_cleared"]


def test_readings_flagged_by_their_status_are_neither_faults_nor_values():
    s = new_site(CH4)
    s.observe(
        [Reading(1, "CH4", T0, -50000, status=128), Reading(2, "CH4", T0 + 1, 90000, status=4)],
        ctx(),
        {},
    )
    assert s.collect_events() == []


def test_a_fault_derived_again_after_a_restart_is_not_doubled():
    s = new_site(CH4)
    batch = [Reading(1, "CH4", T0, -50000), Reading(2, "CH4", T0 + 1000, 3000)]
    s.observe(batch, ctx(), {})
    assert [e.NAME for e in s.collect_events()] == [
        "sensor.fault_detected/1",
        "sensor.fault_cleared/1",
    ]
    s.observe(batch, ctx(), {})
    assert s.collect_events() == []


def test_the_summary_leaves_faulty_values_out_and_counts_them():
    rows = [
        Reading(1, "CH4", T0, scaled("-5", 4)),
        Reading(2, "CH4", T0 + 1, scaled("0.30", 4)),
        Reading(3, "CH4", T0 + 2, scaled("4.50", 4)),
        Reading(4, "CH4", T0 + 3, scaled("0.41", 4)),
        Reading(5, "CH4", T0 + 4, scaled("2.00", 4), status=4),
        Reading(6, "CH4", T0 + 5, scaled("4.00", 4)),  # the top of the range: a value
        Reading(7, "BAD", T0 + 6, -1),
    ]
    ranges = {"CH4": DEFAULT_RANGES[SensorType.METHANE], "BAD": Range(0, 10)}
    assert statistics(rows, ranges) == [
        {"point": "BAD", "count": 1, "flagged": 0, "faulty": 1, "min": None, "mean": None,
         "max": None},
        {"point": "CH4", "count": 6, "flagged": 1, "faulty": 2, "min": 3000, "mean": 15700,
         "max": 40000},
    ]  # fmt: skip
    s = new_site(CH4)
    assert s.summarize(T0, rows[:6], ctx()) is True
    (event,) = s.collect_events()
    (stat,) = event.payload()["points"]
    assert (stat["count"], stat["faulty"], stat["min"], stat["max"]) == (6, 2, 3000, 40000)


# -- defaults of the other gases and the temperature -------------------------------------------


def test_o2_alarms_below_20_percent_not_at_20():
    s = new_site({"point_code": "O2", "sensor_type": "o2"})
    assert s.points["O2"]["thresholds"]["lower"] is True
    feed = Feed(s, "O2")
    assert feed("20.9", "20.00") == []
    assert feed("19.99") == ["alarm_raised"]
    assert feed("20.00") == ["alarm_cleared"]


def test_o2_faults_alarm_only_on_the_side_of_danger():
    """O2 is a lower limit: below its 0–25 % range is the side of danger, above it is not."""
    s = new_site({"point_code": "O2", "sensor_type": "o2"})
    feed = Feed(s, "O2")
    assert feed("26") == ["fault_detected"]  # above a 0–25 % sensor: no alarm
    assert feed("-1") == ["alarm_raised"]  # the same fault goes on, recorded once
    assert feed("20.5") == ["fault_cleared", "alarm_cleared"]
    assert feed("-0.01") == ["fault_detected", "alarm_raised"]


def test_co2_over_half_a_percent_alarms():
    s = new_site({"point_code": "CO2", "sensor_type": "co2"})
    feed = Feed(s, "CO2")
    assert feed("0.04", "0.50") == []
    assert feed("0.51") == ["alarm_raised"]
    assert feed("0.50") == ["alarm_cleared"]


@pytest.mark.parametrize(
    ("sensor", "below", "at", "extra"),
    [
        ("co", "23.9", "24", {}),  # 24 ppm (0.0024 %): the mine rule alarms at it
        ("no2", "2.50", "2.51", {"measuring_range": WIDE}),  # over 0.00025 % = 2.5 ppm
        ("so2", "5.00", "5.01", {"measuring_range": WIDE}),  # over 0.0005 % = 5 ppm
        ("h2s", "6.60", "6.61", {"measuring_range": WIDE}),  # over 0.00066 % = 6.6 ppm
        ("nh3", "40.00", "40.01", {"measuring_range": WIDE}),  # over 0.004 % = 40 ppm
        ("temperature", "29.9", "30.0", {}),  # ≥ 30 ℃ (mine rule)
    ],
)
def test_each_other_default_at_its_boundary(sensor, below, at, extra):
    s = new_site({"point_code": "P", "sensor_type": sensor, **extra})
    th = s.points["P"]["thresholds"]
    assert th["power_cut"] is None and th["lower"] is False  # an alarm, no power cut
    feed = Feed(s, "P")
    assert feed(below) == []
    assert feed(at) == ["alarm_raised"]
    assert feed(below) == ["alarm_cleared"]


@pytest.mark.parametrize(
    ("sensor", "top", "beyond"),
    [
        ("no2", "20.00", "20.01"),
        ("so2", "100.00", "100.01"),
        ("h2s", "100.00", "100.01"),
        ("nh3", "100.00", "100.01"),
    ],
)
def test_the_other_gases_register_with_their_defaults_alone(sensor, top, beyond):
    """NO2, SO2, H2S and NH3 have a default measuring range (docs/domain.md §4.2), so a point of
    them at a coal mine needs neither thresholds nor a range; outside the range is a fault."""
    s = new_site({"point_code": "P", "sensor_type": sensor})
    point = s.view()["points"]["P"]
    assert point["measuring_range"] == {"low": "0.00", "high": top}
    assert point["thresholds"]["alarm"] is not None
    feed = Feed(s, "P")
    assert feed("0.00") == []
    assert feed("-0.01") == ["fault_detected"]  # below the range: a fault, no alarm
    assert s.view()["active_faults"] == ["P"] and s.view()["active_alarms"] == []
    assert feed(top) == ["fault_cleared", "alarm_raised"]  # the top itself is a value
    assert feed(beyond) == ["fault_detected"]  # above: a fault, the alarm kept (§10, 8)
    assert s.view()["active_alarms"] == ["P"]
    assert feed("0.00") == ["fault_cleared", "alarm_cleared"]
    rows = [Reading(1, "P", T0, scaled(beyond, 2)), Reading(2, "P", T0 + 1, scaled("1.5", 2))]
    (stat,) = statistics(rows, {"P": DEFAULT_RANGES[SensorType(sensor)]})
    assert (stat["faulty"], stat["min"], stat["max"]) == (1, 150, 150)


def test_the_series_ventilated_heading_also_cuts_the_local_fan_at_1_5():
    s = new_site({"point_code": "F", "sensor_type": "methane", "location": "series_heading_fan"})
    assert s.view()["points"]["F"]["thresholds"]["fan_cut"] == "1.5000"
    feed = Feed(s, "F")
    assert feed("0.49") == []
    assert feed("0.50") == ["alarm_raised", "power_cut"]
    assert feed("1.49") == []
    assert feed("1.50") == ["fan_cut"]
    assert feed("0.50") == []  # restored below 0.5 only, fan included
    assert feed("0.49") == ["fan_restored", "power_restored", "alarm_cleared"]


def test_other_locations_have_no_fan_cut():
    s = new_site(CH4)
    assert "fan_cut" not in s.points["CH4"]["thresholds"]
    assert Feed(s, "CH4")("3.9") == ["alarm_raised", "power_cut"]


# -- registration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"sensor_type": "air_speed"},
            "thresholds",
            "air_speed points have no default thresholds",
        ),
        (
            {"sensor_type": "tank_level", "measuring_range": WIDE},
            "thresholds",
            "tank_level points have no default thresholds",
        ),
        (
            {"sensor_type": "tank_level", "thresholds": {"alarm": "8"}},
            "measuring_range",
            "no default measuring range",
        ),
        (
            {"sensor_type": "toxic_gas", "thresholds": {"alarm": "10"}},
            "measuring_range",
            "no default measuring range",
        ),
        ({"sensor_type": "co", "thresholds": {}}, "thresholds", "an alarm or a power-cut level"),
        (
            {"sensor_type": "methane", "thresholds": {"alarm": "30", "lower": True}},
            "thresholds.alarm",
            "the alarm level 30.0000 % is outside the measuring range 0.0000–4.0000 %",
        ),
        (
            {"sensor_type": "nh3", "measuring_range": {"low": "0", "high": "20"}},
            "thresholds.alarm",
            "the alarm level 40.01 ppm is outside the measuring range 0.00–20.00 ppm",
        ),
        (
            {"sensor_type": "co", "measuring_range": {"low": "5", "high": "5"}},
            "measuring_range",
            "the low end must be below the high end",
        ),
        (
            {"sensor_type": "methane", "thresholds": {"alarm": "1", "fan_cut": "1.5"}},
            "thresholds.fan_cut",
            "give power_cut",
        ),
        (
            {
                "sensor_type": "methane",
                "thresholds": {
                    "alarm": "0.5",
                    "power_cut": "1",
                    "restore": "0.5",
                    "fan_cut": "0.8",
                },
            },
            "thresholds.fan_cut",
            "must not come before the power-cut level",
        ),
    ],
)
def test_points_without_what_they_need_are_refused_with_the_reason(body, field, message):
    s = new_site()
    with pytest.raises(Invalid) as e:
        register(s, {"point_code": "P", **body})
    (error,) = e.value.errors
    assert error.field == field and message in str(error.message), error


def test_the_mine_defaults_hold_at_coal_mines_only():
    s = Site.register(
        RegisterSite.model_validate_json(js(site(site_type="hazardous_chemicals"))), ctx()
    )
    with pytest.raises(
        Invalid, match="temperature points at a hazardous_chemicals site have no default"
    ):
        register(s, {"point_code": "T", "sensor_type": "temperature"})
    register(s, {"point_code": "T", "sensor_type": "temperature", "thresholds": {"alarm": "60"}})
    register(s, {"point_code": "CH4", "sensor_type": "methane", "location": "working_face"})


def test_a_point_with_its_own_range_and_thresholds():
    s = new_site(
        {
            "point_code": "HC",
            "sensor_type": "methane",
            "place": "抽采管道",
            "measuring_range": {"low": "0", "high": "100"},
            "thresholds": {"alarm": "30", "lower": True},  # drainage below 30 % (a site's rule)
        }
    )
    assert s.view()["points"]["HC"]["measuring_range"] == {"low": "0.0000", "high": "100.0000"}
    assert Feed(s, "HC")("45", "29.9") == ["alarm_raised"]


def test_changed_thresholds_stay_inside_the_range():
    s = new_site(CH4)
    change = {
        "point_code": "CH4",
        "thresholds": {"alarm": "5", "power_cut": "6", "restore": "5"},
        "reason": "误输入",
        "expected_version": s.version,
    }
    with pytest.raises(Invalid, match="outside the measuring range"):
        s.change_thresholds(ChangeThresholds.model_validate_json(js(change)), ctx())


# -- points recorded before ranges --------------------------------------------------------------


def _old_registration(s: Site, point: str, sensor_type: str, thresholds: dict) -> None:
    """A sensor.point_registered/1 as an earlier version wrote it: no measuring_range."""
    event = PointRegistered(
        originator_id=s.id,
        originator_version=s.version + 1,
        recorded_at=T0,
        actor={"user": "zhang", "node": "130102"},
        point=point,
        sensor_type=sensor_type,
        location=None,
        place=None,
        unit="%",
        scale=4,
        thresholds=thresholds,
    )
    assert "measuring_range" not in {k for k, v in event.payload().items() if v is not None}
    s._mutate(event)


def test_a_point_registered_before_ranges_takes_its_types_default():
    s = new_site()
    th = {"alarm": 10000, "power_cut": 15000, "restore": 10000, "lower": False}
    _old_registration(s, "OLD", "methane", th)
    _old_registration(s, "LVL", "tank_level", {**th, "power_cut": None, "restore": None})
    # thresholds beyond 0–4 %: a high-concentration sensor, whose range the log does not hold
    _old_registration(s, "HC", "methane", {**th, "alarm": 300000, "lower": True})
    assert s.points["OLD"]["measuring_range"] == {"low": 0, "high": 40000}
    assert s.points["LVL"]["measuring_range"] is None  # no default: no value is a fault
    assert s.points["HC"]["measuring_range"] is None
    s.observe(
        [
            Reading(1, "OLD", T0, -50000),
            Reading(2, "LVL", T0, -50000),
            Reading(3, "HC", T0, 450000),
        ],
        ctx(),
        {},
    )
    assert [(e.NAME, e.payload()["point"]) for e in s.collect_events()] == [
        ("sensor.fault_detected/1", "OLD")
    ]


def test_a_snapshot_of_an_earlier_version_is_taken_up():
    s = new_site(CH4)
    state = s.snapshot()
    for key in ("measuring_range", "fault", "fan_cut"):
        del state["points"]["CH4"][key]
    restored = Site.restore(state)
    assert isinstance(restored, Site)
    restored.observe([Reading(1, "CH4", T0, -50000)], ctx(), {})
    assert [e.NAME for e in restored.collect_events()] == ["sensor.fault_detected/1"]
