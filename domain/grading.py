"""Accident grades and deadlines of 《生产安全事故报告和调查处理条例》 (国务院令第493号).

Art. 3: any one criterion suffices and the highest grade reached applies; "以上" includes the
number, "以下" excludes it (half-open intervals). Missing persons count with deaths (Art. 12(4),
statistics rules); serious injuries include acute industrial poisoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from domain.base import HOUR_MS
from domain.codes import Tier, bureau_for


class Grade(IntEnum):
    """Accident grades, ordered by severity. The wire value is ``.code``."""

    NEAR_MISS = 0  # 较大涉险事故: reported like an accident, no casualties (总局令21号 Art. 26)
    GENERAL = 1  # 一般
    LARGER = 2  # 较大
    MAJOR = 3  # 重大
    ESPECIALLY_MAJOR = 4  # 特别重大

    @property
    def code(self) -> str:
        return self.name.lower()

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def from_code(cls, code: str) -> Grade:
        return cls[code.upper()]


_LABELS = {
    Grade.NEAR_MISS: "较大涉险",
    Grade.GENERAL: "一般",
    Grade.LARGER: "较大",
    Grade.MAJOR: "重大",
    Grade.ESPECIALLY_MAJOR: "特别重大",
}

# Lower bounds (inclusive) of each grade above GENERAL, per criterion (Art. 3).
DEATH_BOUNDS = ((30, Grade.ESPECIALLY_MAJOR), (10, Grade.MAJOR), (3, Grade.LARGER))
INJURY_BOUNDS = ((100, Grade.ESPECIALLY_MAJOR), (50, Grade.MAJOR), (10, Grade.LARGER))
LOSS_BOUNDS = (
    (100_000_000, Grade.ESPECIALLY_MAJOR),  # 1亿元
    (50_000_000, Grade.MAJOR),  # 5000万元
    (10_000_000, Grade.LARGER),  # 1000万元
)


def _by(value: int, bounds: tuple[tuple[int, Grade], ...]) -> Grade:
    for lower, grade in bounds:
        if value >= lower:
            return grade
    return Grade.GENERAL


@dataclass(frozen=True)
class Grading:
    grade: Grade
    criteria: tuple[str, ...]  # which criteria reached that grade


def grade_accident(
    deaths: int, missing: int, serious_injuries: int, direct_loss_yuan: int
) -> Grading:
    by = {
        "deaths_and_missing": _by(deaths + missing, DEATH_BOUNDS),
        "serious_injuries": _by(serious_injuries, INJURY_BOUNDS),
        "direct_loss": _by(direct_loss_yuan, LOSS_BOUNDS),
    }
    grade = max(by.values())
    return Grading(grade, tuple(name for name, g in by.items() if g == grade))


# Art. 10: the bureau that takes the report passes it up until it reaches this tier.
MUST_REACH = {
    Grade.NEAR_MISS: Tier.PROVINCE,  # [U] 总局令21号 Art. 26 read as provincial level
    Grade.GENERAL: Tier.CITY,
    Grade.LARGER: Tier.PROVINCE,
    Grade.MAJOR: Tier.NATIONAL,
    Grade.ESPECIALLY_MAJOR: Tier.NATIONAL,
}

# Art. 19: who investigates (the tier whose node owns the investigation).
INVESTIGATED_BY = {
    Grade.NEAR_MISS: Tier.COUNTY,
    Grade.GENERAL: Tier.COUNTY,
    Grade.LARGER: Tier.CITY,
    Grade.MAJOR: Tier.PROVINCE,
    Grade.ESPECIALLY_MAJOR: Tier.NATIONAL,
}


def must_reach(grade: Grade, division: str) -> str:
    """The region of the bureau a report of an accident in ``division`` must reach (Art. 10):
    the bureau that does the tier's part there (a municipality's district reports 一般 accidents
    to the municipality, domain.codes.bureau_for)."""
    return bureau_for(division, MUST_REACH[grade])


def investigated_by(grade: Grade, division: str) -> str:
    """The region of the bureau whose government investigates an accident of ``grade`` in
    ``division`` (Art. 19; docs/domain.md §1.7): the county's for 一般, the city's for 较大, the
    province's for 重大, the State Council's (national) for 特别重大; where the place has no
    bureau of that tier, the next one up (domain.codes.bureau_for): a city without counties
    investigates its 一般 accidents (441900), the province the 较大 accidents of a county with
    no city above it (419001 -> 410000). A tier above may investigate too (Art. 20 para 1)."""
    return bureau_for(division, INVESTIGATED_BY[grade])


UNIT_REPORT_DEADLINE_MS = HOUR_MS  # Art. 9: the unit head reports within 1 hour
SUPPLEMENT_WINDOW_DAYS = 30  # Art. 13: 自事故发生之日起30日内
SHORT_SUPPLEMENT_WINDOW_DAYS = 7  # Art. 13: road traffic and fire
SHORT_WINDOW_INDUSTRIES = frozenset({"road_traffic", "fire"})


def supplement_window_days(industry: str) -> int:
    if industry in SHORT_WINDOW_INDUSTRIES:
        return SHORT_SUPPLEMENT_WINDOW_DAYS
    return SUPPLEMENT_WINDOW_DAYS


# 较大涉险事故 criteria (总局令21号 Art. 26).
NEAR_MISS_ENDANGERED = 10
NEAR_MISS_TRAPPED = 3
NEAR_MISS_EVACUATED = 500
