"""Sensor types with their units and integer scales, and the default thresholds of the
煤矿安全规程 methane table by location (docs/domain.md §4.1) and CO (§4.2).

Values are integers in a fixed scale per point: ``value = round_half_even(reading × 10**scale)``
(0.75 %CH₄ at scale 4 is 7500)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import NamedTuple


class SensorType(StrEnum):
    METHANE = "methane"  # 甲烷 %CH4
    CO = "co"  # 一氧化碳 ppm
    O2 = "o2"  # 氧气 %
    CO2 = "co2"  # 二氧化碳 %
    AIR_SPEED = "air_speed"  # 风速 m/s
    TEMPERATURE = "temperature"  # 温度 ℃
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
            raise ValueError(f"{value!r} is not a finite number")
        if abs(d) >= LIMIT:
            raise ValueError(f"{value!r} is beyond what a sensor reads (|value| < 10^12)")
        return int(d.scaleb(scale).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None


def unscaled(value: int, scale: int) -> str:
    """The decimal text of a scaled integer (7500 at scale 4 → '0.7500')."""
    return str(Decimal(value).scaleb(-scale))


LIMIT = Decimal(10) ** 12  # no sensor reads beyond this in its unit


class Thresholds(NamedTuple):
    """Scaled integers. Upper limits: alarm at ≥ alarm, power cut at ≥ power_cut, power
    restored only below restore. Lower limits (e.g. O₂) mirror that: ≤ and above."""

    alarm: int | None
    power_cut: int | None
    restore: int | None
    lower: bool = False


def _ch4(alarm: str, cut: str | None, restore: str | None) -> Thresholds:
    def s(x: str | None) -> int | None:
        return None if x is None else scaled(x, 4)

    return Thresholds(s(alarm), s(cut), s(restore))


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
    Location.SERIES_HEADING_FAN: _ch4("0.5", "0.5", "0.5"),
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

CO_DEFAULT = Thresholds(alarm=240, power_cut=None, restore=None)  # 24 ppm at scale 1


def default_thresholds(sensor: SensorType, location: Location | None) -> Thresholds:
    if sensor == SensorType.METHANE and location is not None:
        return METHANE_DEFAULTS[location]
    if sensor == SensorType.CO:
        return CO_DEFAULT
    return Thresholds(None, None, None)
