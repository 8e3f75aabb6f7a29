"""China time and China's working days (工作日), for the periods the law counts in days.

A working day is a Monday to Friday that is not a day off of a statutory holiday (放假, including
the days moved into it), or a weekend day worked in exchange (调休上班), as the State Council's
notice of each year sets them (国务院办公厅关于部分节假日安排的通知). Pure: the schedule is data
the node gives (the shipped one, and node.toml ``[calendar]`` for later years). A day of a year
whose schedule is not known is refused, never guessed (docs/domain.md §9).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone

from domain.errors import Refused
from domain.i18n import Text, _

CHINA = timezone(timedelta(hours=8), "CST")  # legal periods count days in China Standard Time
# 全国年节及纪念日放假办法 (2024 revision, from 2025): 13 statutory days off a year for all (元旦 1,
# 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3); a year's notice lists at least these
STATUTORY_DAYS_OFF = 13
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def china_day(ms: int) -> date:
    """The day (China time) of a moment in ms since the epoch."""
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(CHINA).date()


def end_of_day(day: date) -> int:
    """24:00 China time of ``day`` (00:00 of the next day), in ms since the epoch."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), CHINA)
    return (midnight - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class WorkCalendar:
    """The working days of the years whose schedule is known (``years``); ``holidays`` are the
    days off that fall on a Monday to Friday or otherwise (放假), ``workdays`` the weekend days
    worked (调休上班). ``WorkCalendar()`` knows no year: every count through it is refused."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    years: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls,
        holidays: Iterable[date],
        workdays: Iterable[date],
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> WorkCalendar:
        """The shipped schedule (``holidays``, ``workdays``: every year from the first to the last
        year of ``holidays`` is known) with the operator's (``extra_*``: a year's notice copied
        into node.toml), which wins where they differ. A year becomes known by its 1 January
        among the extra holidays (元旦 is in every year's notice, so a year given without it is a
        partial copy) and must list at least its 13 statutory days off (fewer is a partial copy
        too); ValueError says what is wrong with the extra dates."""
        shipped_h, shipped_w = frozenset(holidays), frozenset(workdays)
        extra_h, extra_w = frozenset(extra_holidays), frozenset(extra_workdays)
        both = sorted(extra_h & extra_w)
        if both:
            raise ValueError(
                _(
                    "{days} given both as holiday and as working day",
                    days=", ".join(map(str, both)),
                )
            )
        shipped_years: set[int] = set()
        if shipped_h:
            first, last = min(shipped_h).year, max(shipped_h).year
            shipped_years = set(range(first, last + 1))
        known = {d.year for d in extra_h if (d.month, d.day) == (1, 1)} | shipped_years
        partial = sorted({d.year for d in extra_h | extra_w} - known)
        if partial:
            raise ValueError(
                _(
                    "dates of {years} are given without that year's 1 January (元旦): copy the "
                    "whole notice of the year (国务院办公厅关于部分节假日安排的通知), its holidays "
                    "and its make-up working days",
                    years=", ".join(map(str, partial)),
                )
            )
        for year in sorted(known - shipped_years):
            count = sum(1 for d in extra_h if d.year == year)
            if count < STATUTORY_DAYS_OFF:
                raise ValueError(
                    _(
                        "too few days off for {year}: {count} listed, and a year has at least "
                        "{least} statutory days off (全国年节及纪念日放假办法); copy the whole "
                        "notice of {year} (国务院办公厅关于{year}年部分节假日安排的通知), "
                        "every day off of each holiday and every make-up working day",
                        year=year,
                        count=count,
                        least=STATUTORY_DAYS_OFF,
                    )
                )
        return cls(
            holidays=(shipped_h - extra_w) | extra_h,
            workdays=(shipped_w - extra_h) | extra_w,
            years=frozenset(known),
        )

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day; Refused for a year whose schedule is not known."""
        if day.year not in self.years:
            raise Refused(self._unknown(day.year))
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)

    def working_period_end(self, start_ms: int, days: int) -> int:
        """The instant a period of ``days`` working days counted from ``start_ms`` ends: the day
        it starts is not counted (as ``domain.base.period_end``), then ``days`` working days, the
        last ending at 24:00 China time. Something is within the period while its time is
        before this. Refused when the count runs into a year whose schedule is not known."""
        if days < 1:
            raise ValueError(_("a period has at least one day"))
        day, left = china_day(start_ms), days
        try:
            while left:
                day += timedelta(days=1)
                if self.is_workday(day):
                    left -= 1
        except Refused as e:
            raise Refused(
                _(
                    "a period of {days} working days from {start} runs into {year}: {error}",
                    days=days,
                    start=str(china_day(start_ms)),
                    year=day.year,
                    error=e,
                )
            ) from None
        return end_of_day(day)

    def _unknown(self, year: int) -> Text:
        return _(
            "the working days of {year} are not known to this node (its calendar knows "
            "{years}): copy the State Council's notice of {year} "
            "(国务院办公厅关于{year}年部分节假日安排的通知) into node.toml, [calendar] "
            "holidays = [the days off] and workdays = [the make-up working days], and restart "
            "the node",
            year=year,
            years=_spans(self.years),
        )


def _spans(years: frozenset[int]) -> str | Text:
    """Years as runs: "2004–2026, 2028"."""
    runs: list[list[int]] = []
    for y in sorted(years):
        if runs and y == runs[-1][1] + 1:
            runs[-1][1] = y
        else:
            runs.append([y, y])
    return ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in runs) or _("no year")
