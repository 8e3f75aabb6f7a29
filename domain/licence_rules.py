"""The fixed rules of 安全生产许可证 (《安全生产许可证条例》, 国务院令第397号) that the licence
aggregate reads: which industries need a licence and who issues it, the status vocabulary,
calendar arithmetic in China time, and the parts of a licence number."""

from __future__ import annotations

import calendar
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from domain.base import CHINA, from_ms, to_ms
from domain.i18n import _

# -- industries and issuers -------------------------------------------------------------------

# The industries that need a 安全生产许可证 (Art. 2), with their labels.
INDUSTRY_LABELS = {
    "coal_mine": "煤矿",
    "non_coal_mine": "非煤矿山",
    "hazardous_chemicals": "危险化学品生产",
    "fireworks": "烟花爆竹生产",
    "construction": "建筑施工",
    "civil_explosives": "民用爆炸物品生产",
}

# Arts. 3–5: who issues (the national authority for centrally managed enterprises, Art. 3).
_SAFETY_DEPARTMENT = "省级安全生产监督管理部门（中央管理的企业：应急管理部）（第三条）"
ISSUING_AUTHORITY = {
    "coal_mine": "省级煤矿安全监察机构（中央管理的企业：国家矿山安全监察局）（第三条）",
    "non_coal_mine": _SAFETY_DEPARTMENT,
    "hazardous_chemicals": _SAFETY_DEPARTMENT,
    "fireworks": _SAFETY_DEPARTMENT,
    "construction": "省级建设主管部门（第四条）",
    "civil_explosives": "省级民用爆炸物品行业主管部门（第五条）",
}


def _needs_licence(value: str) -> str:
    if value in INDUSTRY_LABELS:
        return value
    if value == "industry_trade":
        raise ValueError(
            _(
                "industry_trade (冶金等工贸行业) needs no 安全生产许可证: 《安全生产许可证条例》 "
                "Art. 2 requires one only of mines, construction firms and producers of "
                "hazardous chemicals, fireworks and civil explosives"
            )
        )
    raise ValueError(
        _(
            "{value!r} is not an industry that needs a 安全生产许可证 (Art. 2); one of: {options}",
            value=value,
            options=", ".join(INDUSTRY_LABELS),
        )
    )


LicenceIndustry = Annotated[
    str,
    AfterValidator(_needs_licence),
    Field(
        description="An industry that needs a licence (Art. 2).",
        json_schema_extra={"enum": list(INDUSTRY_LABELS)},
    ),
]

# -- status vocabulary ------------------------------------------------------------------------


class LicenceStatus(StrEnum):
    APPLIED = "applied"  # 申请
    ACCEPTED = "accepted"  # 受理
    ISSUED = "issued"  # 颁发, 有效
    REFUSED = "refused"  # 不予颁发
    SUSPENDED = "suspended"  # 暂扣
    REVOKED = "revoked"  # 吊销
    CANCELLED = "cancelled"  # 注销
    EXPIRED = "expired"  # 过期

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    LicenceStatus.APPLIED: "已申请",
    LicenceStatus.ACCEPTED: "已受理",
    LicenceStatus.ISSUED: "有效",
    LicenceStatus.REFUSED: "不予颁发",
    LicenceStatus.SUSPENDED: "暂扣",
    LicenceStatus.REVOKED: "吊销",
    LicenceStatus.CANCELLED: "注销",
    LicenceStatus.EXPIRED: "过期",
}

# -- calendar ---------------------------------------------------------------------------------


def add_months(ms: int, months: int) -> int:
    """The same moment ``months`` calendar months later (earlier when negative), in China
    time; a day the target month lacks becomes its last day (31 May - 3 months = 28/29 Feb)."""
    moment = from_ms(ms).astimezone(CHINA)
    year, month0 = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return to_ms(moment.replace(year=year, month=month0 + 1, day=day))


def add_years(ms: int, years: int) -> int:
    """The same month and day ``years`` later in China time; 29 Feb becomes 28 Feb."""
    return add_months(ms, 12 * years)


# -- licence numbers --------------------------------------------------------------------------

LicenceNumber = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="The number as printed, e.g. （冀）MK安许证字〔2011〕0001; stored verbatim.",
    ),
]

_NUMBER = re.compile(
    r"^[(【\[]\s*([\u4e00-\u9fa5]{1,2})\s*[)】\]]\s*([A-Z]{2})\s*安许证字\s*"
    r"[〔\[(【]\s*(\d{4})\s*[〕\])】]\s*([A-Z0-9-]+)\s*号?$"
)


def parse_licence_number(number: str) -> dict[str, Any] | None:
    """The parts of a licence number (docs/domain.md §2.4), bracket styles and full-width
    characters unified; None when it does not have the usual shape (it is still valid)."""
    text = unicodedata.normalize("NFKC", number).strip().upper()
    m = _NUMBER.match(text)
    if m is None:
        return None
    abbr, code, year, serial = m.groups()
    return {
        "province_abbr": abbr,
        "industry_code": code,
        "year": int(year),
        "serial": serial,
        "normalized": f"（{abbr}）{code}安许证字〔{year}〕{serial}",
    }
