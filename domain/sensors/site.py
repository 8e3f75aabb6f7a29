"""A monitoring site (a mine, a tailings dam, a hazardous-chemical installation) with its points;
the alarms, power cuts and 5-minute summaries derived from its raw readings are its events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from domain.base import (
    Aggregate,
    Command,
    Context,
    Correction,
    Event,
    Reason,
    Revision,
    UpdateCommand,
    VoidCommand,
    Voided,
    iso,
    to_ms,
)
from domain.codes import enterprise_id, in_subtree
from domain.errors import FieldError, Invalid, Refused, said
from domain.fields import CreditCode, Moment, Name, PlaceCode
from domain.i18n import _
from domain.sensors.excursions import (
    AlarmCleared,
    AlarmRaised,
    FanCut,
    FanRestored,
    FaultCleared,
    FaultDetected,
    PowerCut,
    PowerRestored,
)
from domain.sensors.points import (
    RangeInput,
    ThresholdInput,
    range_of,
    settings,
    thresholds_from,
    within,
)
from domain.sensors.readings import WINDOW_MS, Reading, digest, statistics, window_of
from domain.sensors.thresholds import (
    UNITS,
    Location,
    SensorType,
    Thresholds,
    default_range,
    scaled,
    unscaled,
)

SITE_NAMESPACE = uuid.UUID("2b7e0c4e-7f53-5b8e-a1d4-3c9f6e2a8b10")
Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
FUTURE_SLACK_MS = 300_000
SENSOR_TYPES = frozenset(SensorType)  # str values: a newer version's type is not among them


def site_id(code: str, region: str) -> uuid.UUID:
    """The id of the site with ``code`` as registered by the node of ``region``: scoped to
    that node, so no other node can take it first."""
    return uuid.uuid5(SITE_NAMESPACE, f"{region}:{code}")


class SiteKind(StrEnum):
    COAL_MINE = "coal_mine"  # 煤矿安全监控系统
    NON_COAL_MINE = "non_coal_mine"
    TAILINGS_DAM = "tailings_dam"  # 尾矿库在线监测
    HAZARDOUS_CHEMICALS = "hazardous_chemicals"  # 重大危险源监测预警


# -- commands ---------------------------------------------------------------------------------


class RegisterSite(Command):
    site_code: Code = Field(description="矿井编码 or the monitoring system's site code.")
    name: Name
    site_type: SiteKind
    enterprise_credit_code: CreditCode
    enterprise_name: Name
    division: PlaceCode


class RegisterPoint(UpdateCommand):
    point_code: Code = Field(description="测点编码")
    sensor_type: SensorType
    location: Location | None = Field(
        default=None, description="设置地点 (required for methane without thresholds)."
    )
    place: Name | None = Field(default=None, description="安装位置 as written on site.")
    thresholds: ThresholdInput | None = Field(
        default=None,
        description="Omit for the defaults: the methane table by location; at coal mines CO,"
        " O2, CO2, NO2, SO2, H2S, NH3 and temperature. Other points must give them.",
    )
    measuring_range: RangeInput | None = Field(
        default=None,
        description="测量范围; omit for the type's default (methane 0–4 %, CO 0–1000 ppm, ...)."
        " A value outside it is a sensor fault.",
    )


class ChangeThresholds(Revision):
    point_code: Code
    thresholds: ThresholdInput
    reason: str = Reason


class RetirePoint(UpdateCommand):
    point_code: Code
    reason: str = Reason


class CorrectSite(Correction):
    name: Name | None = None
    enterprise_name: Name | None = None


class RawReading(BaseModel):
    """One raw reading as a monitoring system sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    point: Code
    t: Annotated[int, Field(ge=0, lt=4_102_444_800_000)] | Moment = Field(
        description="Milliseconds since the epoch (UTC), or ISO 8601 with offset."
    )
    value: Decimal = Field(description="In the point's unit, e.g. 0.75 (%CH4).")
    status: int = Field(default=0, ge=0, le=255, description="Status bits (docs/domain.md §4.3).")


class ReadingBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    readings: list[RawReading] = Field(min_length=1)


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SiteRegistered(Event):
    NAME = "sensor.site_registered/1"
    site_code: str
    name: str
    site_type: str
    enterprise_id: str
    enterprise_credit_code: str
    enterprise_name: str
    division: str

    def apply(self, agg: Site) -> None:
        agg.facts.update(self.payload())


@dataclass(frozen=True, kw_only=True)
class PointRegistered(Event):
    NAME = "sensor.point_registered/1"
    point: str
    sensor_type: str
    location: str | None
    place: str | None
    unit: str
    scale: int
    thresholds: dict[str, Any]
    # {"low", "high"} scaled; absent from points registered before ranges were recorded: they
    # take the default range of their type, if it has one (an upcast)
    measuring_range: dict[str, int] | None = None

    def apply(self, agg: Site) -> None:
        agg.points[self.point] = _point_state(
            {
                "sensor_type": self.sensor_type,
                "location": self.location,
                "place": self.place,
                "unit": self.unit,
                "scale": self.scale,
                "thresholds": self.thresholds,
                "measuring_range": self.measuring_range,
            }
        )


@dataclass(frozen=True, kw_only=True)
class ThresholdsChanged(Event):
    NAME = "sensor.thresholds_changed/1"
    point: str
    thresholds: dict[str, Any]
    reason: str

    def apply(self, agg: Site) -> None:
        agg.points[self.point]["thresholds"] = self.thresholds


@dataclass(frozen=True, kw_only=True)
class PointRetired(Event):
    NAME = "sensor.point_retired/1"
    point: str
    reason: str

    def apply(self, agg: Site) -> None:
        agg.points[self.point]["retired"] = {"at": self.recorded_at, "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class SummaryRecorded(Event):
    NAME = "sensor.summary_recorded/1"
    window_start: int
    window_end: int
    reading_count: int
    points: list[dict[str, Any]]
    raw_sha256: str
    first_reading_id: int
    last_reading_id: int

    def apply(self, agg: Site) -> None:
        agg.summarized_until = self.window_end
        agg.summaries += 1


@dataclass(frozen=True, kw_only=True)
class SiteCorrected(Event):
    NAME = "sensor.site_corrected/1"
    changes: dict[str, Any]
    reason: str

    def apply(self, agg: Site) -> None:
        agg.facts.update(self.changes)


@dataclass(frozen=True, kw_only=True)
class SiteVoided(Voided):
    NAME = "sensor.site_voided/1"


# -- aggregate --------------------------------------------------------------------------------


class Site(Aggregate):
    KIND = "site"
    DERIVED_ID = True
    CACHED = True  # loaded for every readings batch: the node keeps it in memory
    HISTORY_LIMIT = 100  # a site records thousands of summaries; the view keeps the latest

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.facts: dict[str, Any] = {}
        self.points: dict[str, dict[str, Any]] = {}
        self.summarized_until = 0  # end of the last summarized window: earlier readings are closed
        self.summaries = 0

    @classmethod
    def register(cls, cmd: RegisterSite, ctx: Context) -> Site:
        if not in_subtree(ctx.region, cmd.division):
            raise Invalid.field(
                "division",
                _(
                    "{division} is outside this node's area ({region})",
                    division=cmd.division,
                    region=ctx.region,
                ),
            )
        return cls.start(
            site_id(cmd.site_code, ctx.region),
            SiteRegistered,
            ctx,
            site_code=cmd.site_code,
            name=cmd.name,
            site_type=cmd.site_type.value,
            enterprise_id=str(enterprise_id(cmd.enterprise_credit_code, cmd.division)),
            enterprise_credit_code=cmd.enterprise_credit_code,
            enterprise_name=cmd.enterprise_name,
            division=cmd.division,
        )

    def register_point(self, cmd: RegisterPoint, ctx: Context) -> None:
        self.ensure_live()
        if cmd.point_code in self.points:
            raise Refused(
                _(
                    "point {point} is already registered at site {site}",
                    point=cmd.point_code,
                    site=self.facts["site_code"],
                )
            )
        thresholds, rng = settings(
            cmd.sensor_type,
            cmd.location,
            cmd.thresholds,
            cmd.measuring_range,
            self.facts["site_type"],
        )
        unit = UNITS[cmd.sensor_type]
        self._trigger(
            PointRegistered,
            ctx,
            point=cmd.point_code,
            sensor_type=cmd.sensor_type.value,
            location=cmd.location.value if cmd.location else None,
            place=cmd.place,
            unit=unit.unit,
            scale=unit.scale,
            thresholds=thresholds.payload(),
            measuring_range=rng._asdict(),
        )

    def change_thresholds(self, cmd: ChangeThresholds, ctx: Context) -> None:
        point = self._live_point(cmd.point_code)
        th = thresholds_from(cmd.thresholds, point["scale"])
        rng = range_of(point)
        if rng is not None:
            within(th, rng, SensorType(point["sensor_type"]))
        thresholds = th.payload()
        if thresholds == point["thresholds"]:
            raise Invalid.field("thresholds", _("the thresholds are unchanged"))
        self._trigger(
            ThresholdsChanged, ctx, point=cmd.point_code, thresholds=thresholds, reason=cmd.reason
        )

    def retire_point(self, cmd: RetirePoint, ctx: Context) -> None:
        self._live_point(cmd.point_code)
        self._trigger(PointRetired, ctx, point=cmd.point_code, reason=cmd.reason)

    def correct(self, cmd: CorrectSite, ctx: Context) -> None:
        self.ensure_live()
        changes = {
            k: v
            for k, v in (("name", cmd.name), ("enterprise_name", cmd.enterprise_name))
            if v is not None and v != self.facts[k]
        }
        if not changes:
            raise Invalid.field("*", _("the correction changes nothing"))
        self._trigger(SiteCorrected, ctx, changes=changes, reason=cmd.reason)

    def void(self, cmd: VoidCommand, ctx: Context) -> None:
        self.ensure_live()
        self._trigger(SiteVoided, ctx, reason=cmd.reason)

    # -- readings -----------------------------------------------------------------------------
    def accept(self, batch: ReadingBatch, ctx: Context) -> list[tuple[str, int, int, int]]:
        """The batch as rows for the readings store — (point, t, scaled value, status), sorted
        by time — or Invalid naming every reading that cannot be taken (then nothing is
        stored): unknown or retired points, values that are not numbers, future times."""
        self.ensure_live()
        rows, errors = [], []
        for i, r in enumerate(batch.readings):
            where = f"readings.{i}"
            p = self.points.get(r.point)
            t = r.t if isinstance(r.t, int) else to_ms(r.t)
            if p is None:
                errors.append(
                    FieldError(
                        where + ".point", _("no point {point!r} at this site", point=r.point)
                    )
                )
                continue
            if p["retired"] is not None:
                errors.append(
                    FieldError(where + ".point", _("point {point} is retired", point=r.point))
                )
                continue
            if t > ctx.now_ms + FUTURE_SLACK_MS:
                errors.append(FieldError(where + ".t", _("{time} is in the future", time=iso(t))))
            try:
                rows.append((r.point, t, scaled(r.value, p["scale"]), r.status))
            except ValueError as e:
                errors.append(FieldError(where + ".value", said(e)))
        if errors:
            raise Invalid(errors)
        return sorted(rows, key=lambda row: (row[1], row[0]))

    def observe(self, readings: list[Reading], ctx: Context, latest: dict[str, int]) -> None:
        """Derive faults, alarms and power cuts from stored readings in time order. ``latest``
        holds each point's latest reading time derived so far and is advanced here: a reading
        older than that arrived late and is history, not the point's current state. A reading
        already reflected in the point's events (after a crash and restart) is skipped.

        A value outside the point's measuring range is a fault, recorded once and cleared by
        the next value inside it. A fault below an upper-limit range (methane −5 %) or above a
        lower-limit one (O2) is no measurement: it changes no alarm. One on the side of
        danger (methane past the top of its range) means at least the end of the range, or a
        sensor the monitoring system must treat as if it did: it is checked as that end, so
        it raises alarms and cuts, never clears them (docs/domain.md §4.2)."""
        for r in sorted(readings, key=lambda r: (r.t, r.id)):
            p = self.points.get(r.point)
            if (
                p is None
                or p["retired"] is not None
                or r.id <= p["last_reading_id"]
                or r.t < latest.get(r.point, r.t)
            ):
                continue
            latest[r.point] = r.t
            if not r.usable:
                continue
            th = Thresholds(**p["thresholds"])
            common = {"point": r.point, "t": r.t, "value": r.value, "reading_id": r.id}
            rng = range_of(p)
            side = None if rng is None else rng.side(r.value)
            value = r.value
            if rng is None or side is None:
                if p["fault"] is not None:
                    self._trigger(FaultCleared, ctx, detected_at=p["fault"]["since"], **common)
            else:
                bound = rng.low if side == "below" else rng.high
                if p["fault"] is None:
                    self._trigger(FaultDetected, ctx, side=side, bound=bound, **common)
                if side != ("below" if th.lower else "above"):
                    continue
                value = bound
            self._levels(p, th, value, common, ctx)

    def _levels(
        self, p: dict[str, Any], th: Thresholds, value: int, common: dict[str, Any], ctx: Context
    ) -> None:
        sign = -1 if th.lower else 1  # lower limits (O2): mirror every comparison
        v = sign * value
        restored = th.restore is not None and v < sign * th.restore
        if p["fan_cut"] is not None and (th.fan_cut is None or restored):
            self._trigger(FanRestored, ctx, cut_at=p["fan_cut"]["since"], **common)
        if p["power_cut"] is not None and restored:
            self._trigger(PowerRestored, ctx, cut_at=p["power_cut"]["since"], **common)
        if p["alarm"] is not None and (th.alarm is None or v < sign * th.alarm):
            self._trigger(AlarmCleared, ctx, raised_at=p["alarm"]["since"], **common)
        if p["alarm"] is None and th.alarm is not None and v >= sign * th.alarm:
            self._trigger(AlarmRaised, ctx, threshold=th.alarm, **common)
        if p["power_cut"] is None and th.power_cut is not None and v >= sign * th.power_cut:
            self._trigger(PowerCut, ctx, threshold=th.power_cut, **common)
        if p["fan_cut"] is None and th.fan_cut is not None and v >= sign * th.fan_cut:
            self._trigger(FanCut, ctx, threshold=th.fan_cut, **common)

    def summarize(self, window_start: int, readings: list[Reading], ctx: Context) -> bool:
        """Record the summary of one closed window; False (nothing recorded) if it already is."""
        if window_start < self.summarized_until or not readings:
            return False
        if window_start % WINDOW_MS or any(window_of(r.t) != window_start for r in readings):
            raise ValueError(_("readings outside the window given"))
        self._trigger(
            SummaryRecorded,
            ctx,
            window_start=window_start,
            window_end=window_start + WINDOW_MS,
            reading_count=len(readings),
            points=statistics(readings, {c: range_of(p) for c, p in self.points.items()}),
            raw_sha256=digest(readings),
            first_reading_id=readings[0].id,
            last_reading_id=readings[-1].id,
        )
        return True

    # -- reading --------------------------------------------------------------------------------
    def _live_point(self, code: str) -> dict[str, Any]:
        self.ensure_live()
        p = self.points.get(code)
        if p is None:
            raise Invalid.field(
                "point_code",
                _("no point {point!r} at site {site}", point=code, site=self.facts["site_code"]),
            )
        if p["retired"] is not None:
            raise Refused(
                _(
                    "point {point} was retired at {at}",
                    point=code,
                    at=iso(p["retired"]["at"]),
                )
            )
        return p

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Site:
        site = super().restore(state)
        assert isinstance(site, Site)
        site.points = {  # an earlier version's snapshot holds points without a range
            code: p if "measuring_range" in p else _point_state(p)
            for code, p in site.points.items()
        }
        return site

    def state(self) -> dict[str, Any]:
        def show(p: dict[str, Any]) -> dict[str, Any]:
            scale = p["scale"]
            th = {
                k: (unscaled(v, scale) if isinstance(v, int) and k != "lower" else v)
                for k, v in p["thresholds"].items()
            }
            excursion = {
                k: p[k] and {"since": iso(p[k]["since"]), "value": unscaled(p[k]["value"], scale)}
                for k in ("alarm", "power_cut", "fan_cut", "fault")
            }
            rng = p["measuring_range"]
            return {
                **p,
                "thresholds": th,
                "measuring_range": rng and {k: unscaled(v, scale) for k, v in rng.items()},
                **excursion,
                "retired": p["retired"] and {**p["retired"], "at": iso(p["retired"]["at"])},
            }

        return {
            **self.facts,
            "points": {code: show(p) for code, p in sorted(self.points.items())},
            "active_alarms": sorted(
                c for c, p in self.points.items() if p["alarm"] and not p["retired"]
            ),
            "active_power_cuts": sorted(
                c for c, p in self.points.items() if p["power_cut"] and not p["retired"]
            ),
            "active_faults": sorted(
                c for c, p in self.points.items() if p["fault"] and not p["retired"]
            ),
            "summarized_until": iso(self.summarized_until) if self.summarized_until else None,
            "summaries": self.summaries,
        }


SiteRegistered.CREATES = Site


def _point_state(facts: dict[str, Any]) -> dict[str, Any]:
    """A point's state from its registration, also one folded or snapshotted by an earlier
    version (without a range, a fault or a fan cut). A point registered before ranges were
    recorded takes its type's default range, unless its thresholds lie outside it (a sensor
    that reads beyond it, e.g. a high-concentration methane sensor): then it has none."""
    rng = facts.get("measuring_range")
    if rng is None and facts["sensor_type"] in SENSOR_TYPES:
        default = default_range(SensorType(facts["sensor_type"]))
        levels = Thresholds(**facts["thresholds"]).levels().values()
        if default is not None and all(default.side(v) is None for v in levels):
            rng = default._asdict()
    state: dict[str, Any] = {
        "retired": None,
        "alarm": None,
        "power_cut": None,
        "fan_cut": None,
        "fault": None,
        "last_reading_id": 0,
    }
    return {**state, **facts, "measuring_range": rng}
