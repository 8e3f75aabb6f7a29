"""What a monitoring point is registered with: its thresholds and its measuring range, given or
by default (docs/domain.md §4.1–§4.2), and the rules that keep them consistent."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from domain.base import Command
from domain.errors import Invalid, said
from domain.i18n import N_, Text, _
from domain.sensors.thresholds import (
    UNITS,
    Location,
    Range,
    SensorType,
    Thresholds,
    default_range,
    default_thresholds,
    scaled,
    unscaled,
)

Level = Annotated[str | int, Field(description='A value in the point\'s unit, e.g. "1.5".')]
LEVEL_NAMES = {
    "alarm": N_("alarm level"),
    "power_cut": N_("power-cut level"),
    "restore": N_("restore level"),
    "fan_cut": N_("fan-cut level"),
}


class ThresholdInput(Command):
    alarm: Level | None = None
    power_cut: Level | None = None
    restore: Level | None = None
    lower: bool = Field(default=False, description="Lower limits (alarm at or below), e.g. O2.")
    fan_cut: Level | None = Field(
        default=None,
        description="A second power-cut level that also cuts the local fan (串联通风 heading).",
    )


class RangeInput(Command):
    """测量范围: a value outside it is a sensor fault, not a measurement."""

    low: Level
    high: Level


def settings(
    sensor: SensorType,
    location: Location | None,
    thresholds: ThresholdInput | None,
    measuring_range: RangeInput | None,
    site_type: str,
) -> tuple[Thresholds, Range]:
    """A new point's thresholds and range: those given, else the defaults of its type (and
    location, for methane), else Invalid saying what the point needs."""
    unit = UNITS[sensor]
    if measuring_range is not None:
        rng = range_from(measuring_range, unit.scale)
    else:
        found = default_range(sensor)
        if found is None:
            raise Invalid.field(
                "measuring_range",
                _(
                    "{sensor} points have no default measuring range: give this point's"
                    ' measuring_range (测量范围, as on the sensor), {{"low": ..., "high": ...}}'
                    " in {unit}",
                    sensor=sensor.value,
                    unit=unit.unit,
                ),
            )
        rng = found
    if thresholds is not None:
        th = thresholds_from(thresholds, unit.scale)
    else:
        default = default_thresholds(sensor, location, site_type)
        if default is None and sensor == SensorType.METHANE:
            raise Invalid.field(
                "location",
                _(
                    "a methane point needs its location (设置地点), which sets its thresholds,"
                    " or thresholds of its own (as a monitoring system's point definition gives)"
                ),
            )
        if default is None:
            raise Invalid.field(
                "thresholds",
                _(
                    "{sensor} points have no default thresholds (the defaults are those of"
                    " 煤矿安全规程, for coal mines): give this point's thresholds (alarm; power_cut"
                    " with restore; lower for a lower limit)",
                    sensor=sensor.value,
                )
                if site_type == "coal_mine"
                else _(
                    "{sensor} points at a {site_type} site have no default thresholds (the"
                    " defaults are those of 煤矿安全规程, for coal mines): give this point's"
                    " thresholds (alarm; power_cut with restore; lower for a lower limit)",
                    sensor=sensor.value,
                    site_type=site_type,
                ),
            )
        th = default
    within(th, rng, sensor)
    return th, rng


def thresholds_from(given: ThresholdInput, scale: int) -> Thresholds:
    try:
        values = {
            k: None if getattr(given, k) is None else scaled(getattr(given, k), scale)
            for k in ("alarm", "power_cut", "restore", "fan_cut")
        }
    except ValueError as e:
        raise Invalid.field("thresholds", said(e)) from None
    th = Thresholds(lower=given.lower, **values)
    if th.alarm is None and th.power_cut is None:
        raise Invalid.field("thresholds", _("thresholds need an alarm or a power-cut level"))
    if th.power_cut is not None and th.restore is None:
        raise Invalid.field(
            "thresholds.restore", _("a power-cut level needs its restore level (复电)")
        )
    if th.fan_cut is not None and th.power_cut is None:
        raise Invalid.field(
            "thresholds.fan_cut", _("a fan-cut level is a second power-cut level: give power_cut")
        )
    sign = -1 if th.lower else 1
    if th.power_cut is not None and th.alarm is not None and sign * th.power_cut < sign * th.alarm:
        raise Invalid.field(
            "thresholds.power_cut", _("the power-cut level must not come before the alarm level")
        )
    if (
        th.power_cut is not None
        and th.restore is not None
        and sign * th.restore > sign * th.power_cut
    ):
        raise Invalid.field(
            "thresholds.restore", _("the restore level must not be beyond the power-cut level")
        )
    if (
        th.fan_cut is not None
        and th.power_cut is not None
        and sign * th.fan_cut < sign * th.power_cut
    ):
        raise Invalid.field(
            "thresholds.fan_cut", _("the fan-cut level must not come before the power-cut level")
        )
    return th


def range_from(given: RangeInput, scale: int) -> Range:
    try:
        rng = Range(scaled(given.low, scale), scaled(given.high, scale))
    except ValueError as e:
        raise Invalid.field("measuring_range", said(e)) from None
    if rng.low >= rng.high:
        raise Invalid.field("measuring_range", _("the low end must be below the high end"))
    return rng


def within(th: Thresholds, rng: Range, sensor: SensorType) -> None:
    """Every level inside the measuring range: one outside could never be read."""
    unit = UNITS[sensor]
    for name, level in th.levels().items():
        if rng.side(level) is not None:
            values = {
                "level": Text(LEVEL_NAMES[name], {}),
                "value": unscaled(level, unit.scale),
                "unit": unit.unit,
                "range": show_range(rng, unit.scale),
            }
            raise Invalid.field(
                "thresholds." + name,
                _(
                    "the {level} {value} {unit} is outside the measuring range {range} {unit}"
                    " (a high-concentration methane sensor reads 0–100 %: give its"
                    " measuring_range)",
                    **values,
                )
                if sensor == SensorType.METHANE
                else _(
                    "the {level} {value} {unit} is outside the measuring range {range} {unit}",
                    **values,
                ),
            )


def show_range(rng: Range, scale: int) -> str:
    return f"{unscaled(rng.low, scale)}–{unscaled(rng.high, scale)}"


def range_of(point: dict[str, Any]) -> Range | None:
    """A point's range as its state holds it; None for a point registered before ranges were
    recorded, of a type without a default (no value of it is a fault)."""
    r = point.get("measuring_range")
    return None if r is None else Range(r["low"], r["high"])
