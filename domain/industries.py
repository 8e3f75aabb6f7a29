"""Industries as the supervision system classifies enterprises and accidents."""

from __future__ import annotations

from enum import StrEnum


class Industry(StrEnum):
    """Industries of enterprises under supervision (the licence-relevant high-risk sectors
    first, then the rest of industry and trade)."""

    COAL_MINE = "coal_mine"  # 煤矿
    NON_COAL_MINE = "non_coal_mine"  # 非煤矿山
    HAZARDOUS_CHEMICALS = "hazardous_chemicals"  # 危险化学品
    FIREWORKS = "fireworks"  # 烟花爆竹
    INDUSTRY_TRADE = "industry_trade"  # 冶金等工贸行业
    CONSTRUCTION = "construction"  # 建筑施工


class AccidentIndustry(StrEnum):
    """Industries of the accident statistics: the enterprise sectors plus the transport and
    fire categories that have their own supplement window (493号令 Art. 13)."""

    COAL_MINE = "coal_mine"
    NON_COAL_MINE = "non_coal_mine"
    HAZARDOUS_CHEMICALS = "hazardous_chemicals"
    FIREWORKS = "fireworks"
    INDUSTRY_TRADE = "industry_trade"
    CONSTRUCTION = "construction"
    ROAD_TRAFFIC = "road_traffic"  # 道路交通
    FIRE = "fire"  # 火灾
    WATER_TRANSPORT = "water_transport"  # 水上交通
    RAILWAY = "railway"  # 铁路运输
    AVIATION = "aviation"  # 民航飞行
    FISHING_VESSEL = "fishing_vessel"  # 渔业船舶
    AGRICULTURAL_MACHINERY = "agricultural_machinery"  # 农业机械
    OTHER = "other"


LABELS = {
    "coal_mine": "煤矿",
    "non_coal_mine": "非煤矿山",
    "hazardous_chemicals": "危险化学品",
    "fireworks": "烟花爆竹",
    "industry_trade": "冶金等工贸行业",
    "construction": "建筑施工",
    "road_traffic": "道路交通",
    "fire": "火灾",
    "water_transport": "水上交通",
    "railway": "铁路运输",
    "aviation": "民航飞行",
    "fishing_vessel": "渔业船舶",
    "agricultural_machinery": "农业机械",
    "other": "其他",
}
