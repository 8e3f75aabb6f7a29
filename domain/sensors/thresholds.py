"""Sensor types with their units and integer scales, and the default thresholds of the
煤矿安全规程 methane table by location (docs/domain.md §4.1) and CO (§4.2).

Values are integers in a fixed scale per point: ``value = round_half_even(reading × 10**scale)``
(0.75 %CH₄ at scale 4 is 7500)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple

from domain.i18n import _


class SensorType(StrEnum):
    METHANE = "methane"  # 甲烷 %CH4
    CO = "co"  # 一氧化碳 ppm
    O2 = "o2"  # 氧气 %
    CO2 = "co2"  # 二氧化碳 %
    AIR_SPEED = "air_speed"  # 风速 m/s
    TEMPERATURE = "temperature"  # 温度 ℃
    NO2 = "no2"  # 二氧化氮 ppm
    SO2 = "so2"  # 二氧化硫 ppm
    H2S = "h2s"  # 硫化氢 ppm
    NH3 = "nh3"  # 氨 ppm
    # tailings dams (尾矿库, §6.2)
    PHREATIC_LINE = "phreatic_line"  # 浸润线埋深 m
    POND_LEVEL = "pond_level"  # 库水位 m
    RAINFALL = "rainfall"  # 降水量 mm
    DISPLACEMENT = "displacement"  # 坝体位移 mm
    # hazardous chemicals (重大危险源, §5.2)
    TANK_LEVEL = "tank_level"  # 液位 m
    PRESSURE = "pressure"  # 压力 MPa
    COMBUSTIBLE_GAS = "combustible_gas"  # 可燃气体 %LEL
    TOXIC_GAS = "toxic_gas"  # 有毒气体 ppm


class Unit(NamedTuple):
    unit: str
    scale: int


UNITS: dict[SensorType, Unit] = {
    SensorType.METHANE: Unit("%", 4),
    SensorType.CO: Unit("ppm", 1),
    SensorType.O2: Unit("%", 2),
    SensorType.CO2: Unit("%", 2),
    SensorType.AIR_SPEED: Unit("m/s", 2),
    SensorType.TEMPERATURE: Unit("℃", 1),
    # limits of a few ppm (NO2 2.5): hundredths, so that "over the limit" is exact
    SensorType.NO2: Unit("ppm", 2),
    SensorType.SO2: Unit("ppm", 2),
    SensorType.H2S: Unit("ppm", 2),
    SensorType.NH3: Unit("ppm", 2),
    SensorType.PHREATIC_LINE: Unit("m", 3),
    SensorType.POND_LEVEL: Unit("m", 3),
    SensorType.RAINFALL: Unit("mm", 1),
    SensorType.DISPLACEMENT: Unit("mm", 1),
    SensorType.TANK_LEVEL: Unit("m", 3),
    SensorType.PRESSURE: Unit("MPa", 3),
    SensorType.COMBUSTIBLE_GAS: Unit("%LEL", 1),
    SensorType.TOXIC_GAS: Unit("ppm", 1),
}


class Location(StrEnum):
    """设置地点 of a methane sensor, the rows of the 煤矿安全规程 table."""

    UPPER_CORNER = "upper_corner"  # 采煤工作面上隅角
    WORKING_FACE = "working_face"  # 低瓦斯/高瓦斯矿井 采煤工作面
    OUTBURST_WORKING_FACE = "outburst_working_face"  # 煤与瓦斯突出矿井 采煤工作面
    FACE_RETURN = "face_return"  # 采煤工作面回风巷
    OUTBURST_FACE_INTAKE = "outburst_face_intake"  # 突出矿井 采煤工作面进风巷
    SERIES_FACE_INTAKE = "series_face_intake"  # 串联通风 被串采煤工作面进风巷
    FACE_RETURN_MIDDLE = "face_return_middle"  # 高瓦斯/突出矿井 采煤工作面回风巷中部
    GAS_DRAINAGE_ROADWAY = "gas_drainage_roadway"  # 专用排瓦斯巷
    DRAINAGE_MIXED_RETURN = "drainage_mixed_return"  # 有专用排瓦斯巷的采煤工作面 混合回风流处
    SHEARER = "shearer"  # 采煤机 (机载)
    HEADING_FACE = "heading_face"  # 煤巷/半煤岩巷/有瓦斯涌出岩巷 掘进工作面
    HEADING_RETURN = "heading_return"  # 掘进工作面 回风流中
    OUTBURST_HEADING_INTAKE = "outburst_heading_intake"  # 突出矿井 掘进工作面进风分风口
    SERIES_HEADING_FAN = "series_heading_fan"  # 串联通风 被串掘进工作面 局部通风机前
    DOUBLE_HEADING_MIXED_RETURN = (
        "double_heading_mixed_return"  # 高瓦斯矿井 双巷掘进 混合回风流处 [U]
    )
    HEADING_MACHINE = "heading_machine"  # 掘进机/连续采煤机/锚杆钻车/梭车 (机载) [U]
    DISTRICT_RETURN = "district_return"  # 采区回风巷 [U]
    MAIN_RETURN = "main_return"  # 一翼回风巷 / 总回风巷 [U]
    TROLLEY_INTAKE = "trolley_intake"  # 高瓦斯矿井 进风主要运输巷 架线电机车 ... [P]
    VEHICLE = "vehicle"  # 防爆蓄电池/柴油机车, 无轨胶轮车 (机载) [U]
    COAL_BUNKER = "coal_bunker"  # 井下煤仓; 封闭带式输送机地面走廊 [U]
    SURFACE_PUMP_HOUSE = "surface_pump_house"  # 地面瓦斯抽采泵房 [U]
    UNDERGROUND_PUMP_STATION = "underground_pump_station"  # 井下临时抽采泵站 下风侧栅栏外 [U]


def scaled(value: str | int | float | Decimal, scale: int) -> int:
    """A reading in its unit as an integer at ``scale``, rounded half-even; ValueError if it
    is not a finite number or too large to record."""
    try:
        d = Decimal(str(value))
        if not d.is_finite():
            raise ValueError(_("{value!r} is not a finite number", value=value))
        if abs(d) >= LIMIT:
            raise ValueError(
                _("{value!r} is beyond what a sensor reads (|value| < 10^12)", value=value)
            )
        return int(d.scaleb(scale).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except InvalidOperation:
        raise ValueError(_("{value!r} is not a number", value=value)) from None


def unscaled(value: int, scale: int) -> str:
    """The decimal text of a scaled integer (7500 at scale 4 → '0.7500')."""
    return str(Decimal(value).scaleb(-scale))


LIMIT = Decimal(10) ** 12  # no sensor reads beyond this in its unit


class Thresholds(NamedTuple):
    """Scaled integers. Upper limits: alarm at ≥ alarm, power cut at ≥ power_cut, power
    restored only below restore. Lower limits (e.g. O₂) mirror that: ≤ and above. ``fan_cut``:
    a second power-cut level that also cuts the local fan (串联通风, §4.1), restored with the
    rest below ``restore``."""

    alarm: int | None
    power_cut: int | None
    restore: int | None
    lower: bool = False
    fan_cut: int | None = None

    def payload(self) -> dict[str, Any]:
        """As events carry them: ``fan_cut`` only where a point has one."""
        d = self._asdict()
        if d["fan_cut"] is None:
            del d["fan_cut"]
        return d

    def levels(self) -> dict[str, int]:
        return {
            k: v
            for k, v in (
                ("alarm", self.alarm),
                ("power_cut", self.power_cut),
                ("restore", self.restore),
                ("fan_cut", self.fan_cut),
            )
            if v is not None
        }


class Range(NamedTuple):
    """A sensor's measuring range (测量范围), scaled, both ends included. A value outside it is
    a sensor fault (故障), not a measurement (docs/domain.md §4.2)."""

    low: int
    high: int

    def side(self, value: int) -> str | None:
        """ "below" or "above" the range, or None inside it."""
        return "below" if value < self.low else "above" if value > self.high else None


def _ch4(alarm: str, cut: str | None, restore: str | None, fan: str | None = None) -> Thresholds:
    def s(x: str | None) -> int | None:
        return None if x is None else scaled(x, 4)

    return Thresholds(s(alarm), s(cut), s(restore), fan_cut=s(fan))


METHANE_DEFAULTS: dict[Location, Thresholds] = {
    Location.UPPER_CORNER: _ch4("1.0", "1.5", "1.0"),
    Location.WORKING_FACE: _ch4("1.0", "1.5", "1.0"),
    Location.OUTBURST_WORKING_FACE: _ch4("1.0", "1.5", "1.0"),
    Location.FACE_RETURN: _ch4("1.0", "1.0", "1.0"),
    Location.OUTBURST_FACE_INTAKE: _ch4("0.5", "0.5", "0.5"),
    Location.SERIES_FACE_INTAKE: _ch4("0.5", "0.5", "0.5"),
    Location.FACE_RETURN_MIDDLE: _ch4("1.0", "1.0", "1.0"),
    Location.GAS_DRAINAGE_ROADWAY: _ch4("2.5", "2.5", "2.5"),
    Location.DRAINAGE_MIXED_RETURN: _ch4("1.0", "1.0", "1.0"),
    Location.SHEARER: _ch4("1.0", "1.5", "1.0"),
    Location.HEADING_FACE: _ch4("1.0", "1.5", "1.0"),
    Location.HEADING_RETURN: _ch4("1.0", "1.0", "1.0"),
    Location.OUTBURST_HEADING_INTAKE: _ch4("0.5", "0.5", "0.5"),
    # ≥ 1.5 also cuts the local fan (局部通风机) [P]
    Location.SERIES_HEADING_FAN: _ch4("0.5", "0.5", "0.5", fan="1.5"),
    Location.DOUBLE_HEADING_MIXED_RETURN: _ch4("1.0", "1.0", "1.0"),
    Location.HEADING_MACHINE: _ch4("1.0", "1.5", "1.0"),
    Location.DISTRICT_RETURN: _ch4("1.0", "1.0", "1.0"),
    Location.MAIN_RETURN: _ch4("0.75", None, None),
    Location.TROLLEY_INTAKE: _ch4("0.5", "0.5", "0.5"),
    Location.VEHICLE: _ch4("0.5", "0.5", "0.5"),
    Location.COAL_BUNKER: _ch4("1.5", "1.5", "1.5"),
    Location.SURFACE_PUMP_HOUSE: _ch4("0.5", None, None),
    Location.UNDERGROUND_PUMP_STATION: _ch4("1.0", "1.0", "1.0"),
}


def _alarm(sensor: SensorType, level: str, lower: bool = False) -> Thresholds:
    return Thresholds(scaled(level, UNITS[sensor].scale), None, None, lower)


# Defaults at coal mines (煤矿安全规程 and the mine rules of docs/domain.md §4.2): an alarm, no
# power cut. A limit the 规程 states as "不超过 X" alarms above X, i.e. at the smallest value
# above it at the point's scale; "不低于 20 %" (O2) alarms below 20, i.e. at or below 19.99.
MINE_DEFAULTS: dict[SensorType, Thresholds] = {
    SensorType.CO: _alarm(SensorType.CO, "24"),  # alarm ≥ 24 ppm (mine rule) [P]
    SensorType.O2: _alarm(SensorType.O2, "19.99", lower=True),  # O2 ≥ 20 % [P]
    SensorType.CO2: _alarm(SensorType.CO2, "0.51"),  # CO2 ≤ 0.5 % [P]
    SensorType.NO2: _alarm(SensorType.NO2, "2.51"),  # ≤ 0.00025 % = 2.5 ppm [P]
    SensorType.SO2: _alarm(SensorType.SO2, "5.01"),  # ≤ 0.0005 % = 5 ppm [P]
    SensorType.H2S: _alarm(SensorType.H2S, "6.61"),  # ≤ 0.00066 % = 6.6 ppm [P]
    SensorType.NH3: _alarm(SensorType.NH3, "40.01"),  # ≤ 0.004 % = 40 ppm [P]
    SensorType.TEMPERATURE: _alarm(SensorType.TEMPERATURE, "30"),  # ≥ 30 ℃ (mine rule) [P]
}
CO_DEFAULT = MINE_DEFAULTS[SensorType.CO]  # 24 ppm at scale 1
MINE_SITES = {"coal_mine"}  # the 煤矿安全规程 defaults hold at coal mines only


def _range(sensor: SensorType, low: str, high: str) -> Range:
    scale = UNITS[sensor].scale
    return Range(scaled(low, scale), scaled(high, scale))


# Measuring ranges a point of the type has unless it is registered with its own (the sensor's
# nameplate 测量范围; docs/domain.md §4.2 gives each its source and confidence). Types not listed
# have no default: their points are registered with a range.
DEFAULT_RANGES: dict[SensorType, Range] = {
    SensorType.METHANE: _range(SensorType.METHANE, "0", "4"),  # 低浓度 (载体催化) [P]
    SensorType.CO: _range(SensorType.CO, "0", "1000"),  # [P]
    SensorType.O2: _range(SensorType.O2, "0", "25"),  # [P]
    SensorType.CO2: _range(SensorType.CO2, "0", "5"),  # [P]
    SensorType.TEMPERATURE: _range(SensorType.TEMPERATURE, "0", "100"),  # [P]
    SensorType.AIR_SPEED: _range(SensorType.AIR_SPEED, "0", "15"),  # [U]
    # electrochemical mine sensors' usual ranges, each several times its 规程 limit [U]
    SensorType.NO2: _range(SensorType.NO2, "0", "20"),
    SensorType.SO2: _range(SensorType.SO2, "0", "100"),
    SensorType.H2S: _range(SensorType.H2S, "0", "100"),
    SensorType.NH3: _range(SensorType.NH3, "0", "100"),
}


def default_thresholds(
    sensor: SensorType, location: Location | None, site_type: str = "coal_mine"
) -> Thresholds | None:
    """The thresholds a point takes when registered without its own; None: it has none and
    must be given them. A methane location names its row of the 规程 table wherever the site."""
    if sensor == SensorType.METHANE:
        return None if location is None else METHANE_DEFAULTS[location]
    return MINE_DEFAULTS.get(sensor) if site_type in MINE_SITES else None


def default_range(sensor: SensorType) -> Range | None:
    return DEFAULT_RANGES.get(sensor)
