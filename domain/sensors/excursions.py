"""The events of a point's excursions (docs/domain.md §4.1–§4.2): alarms, power cuts, the
second cut of a local fan, and sensor faults (values outside the measuring range), each from
the reading that started or ended it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domain.base import Event


class HasPoints(Protocol):
    points: dict[str, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class _Excursion(Event):
    point: str
    t: int
    value: int
    reading_id: int


@dataclass(frozen=True, kw_only=True)
class AlarmRaised(_Excursion):
    NAME = "sensor.alarm_raised/1"
    threshold: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["alarm"] = {"since": self.t, "value": self.value}
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class AlarmCleared(_Excursion):
    NAME = "sensor.alarm_cleared/1"
    raised_at: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["alarm"] = None
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class PowerCut(_Excursion):
    NAME = "sensor.power_cut/1"
    threshold: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["power_cut"] = {"since": self.t, "value": self.value}
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class PowerRestored(_Excursion):
    NAME = "sensor.power_restored/1"
    cut_at: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["power_cut"] = None
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class FanCut(_Excursion):
    """A second power-cut level reached: the local fan cut too (串联通风, §4.1)."""

    NAME = "sensor.fan_cut/1"
    threshold: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["fan_cut"] = {"since": self.t, "value": self.value}
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class FanRestored(_Excursion):
    NAME = "sensor.fan_restored/1"
    cut_at: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["fan_cut"] = None
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class FaultDetected(_Excursion):
    """A value outside the point's measuring range: a sensor fault (故障), not a measurement."""

    NAME = "sensor.fault_detected/1"
    side: str  # "below" or "above" the range
    bound: int  # the end of the range it passed

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["fault"] = {"since": self.t, "value": self.value}
        p["last_reading_id"] = self.reading_id


@dataclass(frozen=True, kw_only=True)
class FaultCleared(_Excursion):
    """The next value inside the range."""

    NAME = "sensor.fault_cleared/1"
    detected_at: int

    def apply(self, agg: HasPoints) -> None:
        p = agg.points[self.point]
        p["fault"] = None
        p["last_reading_id"] = self.reading_id
