"""China's working days (domain.calendar): the shipped schedule, make-up working days, the start
day not counted, China time, and years the node does not know."""

from datetime import UTC, date, datetime

import pytest

from domain.base import CHINA, period_end, to_ms
from domain.calendar import WorkCalendar, china_day, end_of_day
from domain.errors import Refused
from tests.domain.workdays import HOLIDAYS_2027, SHIPPED, WITH_2027, WORKDAYS_2027


def cst(*args: int) -> int:
    return to_ms(datetime(*args, tzinfo=CHINA))


def test_national_day_2026_days_off_and_make_up_days():
    # 国庆 and 中秋 2026: off 25–27 September and 1–7 October; Sunday 20 September and Saturday
    # 10 October are worked
    assert not any(SHIPPED.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert not any(SHIPPED.is_workday(date(2026, 9, d)) for d in (25, 26, 27))
    assert SHIPPED.is_workday(date(2026, 9, 20)) and SHIPPED.is_workday(date(2026, 10, 10))
    assert SHIPPED.is_workday(date(2026, 10, 9)) and not SHIPPED.is_workday(date(2026, 10, 11))


def test_five_working_days_across_national_day():
    # notice on Wednesday 30 September: 8 (Thu), 9 (Fri), 10 (Sat, worked), 12 (Mon), 13 (Tue)
    assert SHIPPED.working_period_end(cst(2026, 9, 30, 10), 5) == cst(2026, 10, 14)


def test_a_make_up_working_day_counts():
    # from Friday 18 September: Sunday 20 (worked), 21, 22, 23, 24; without the make-up day
    # the 5th would fall after 中秋, on Monday 28
    assert SHIPPED.working_period_end(cst(2026, 9, 18, 9), 5) == cst(2026, 9, 25)
    without = WorkCalendar.build(
        SHIPPED.holidays, SHIPPED.workdays - {date(2026, 9, 20)}, extra_holidays=()
    )
    assert without.working_period_end(cst(2026, 9, 18, 9), 5) == cst(2026, 9, 29)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (cst(2026, 12, 7, 0, 0), cst(2026, 12, 15)),  # Monday: Tue 8 … Mon 14
        (cst(2026, 12, 7, 23, 59), cst(2026, 12, 15)),
        (cst(2026, 12, 8, 0, 0), cst(2026, 12, 16)),  # Tuesday: Wed 9 … Tue 15
        (to_ms(datetime(2026, 12, 7, 16, 30, tzinfo=UTC)), cst(2026, 12, 16)),  # 8 Dec in China
        (cst(2026, 12, 5, 10), cst(2026, 12, 12)),  # from a Saturday: Mon 7 … Fri 11
    ],
    ids=str,
)
def test_the_start_day_is_not_counted_and_days_are_china_days(start, end):
    assert SHIPPED.working_period_end(start, 5) == end


def test_a_period_into_an_unknown_year_is_refused_with_the_setting_that_fixes_it():
    # from Monday 28 December 2026: 29, 30, 31, then 2027, which chinese-calendar 1.11 lacks
    with pytest.raises(Refused) as e:
        SHIPPED.working_period_end(cst(2026, 12, 28, 10), 5)
    message = str(e.value)
    for part in ("2027", "2004–2026", "node.toml", "[calendar]", "holidays", "workdays"):
        assert part in message
    assert "国务院办公厅关于2027年部分节假日安排的通知" in message
    assert SHIPPED.working_period_end(cst(2026, 12, 28, 10), 3) == cst(2027, 1, 1)  # 2026 only


def test_a_supplied_schedule_counts_the_year():
    # 29, 30, 31 December; 1–3 January off (supplied); Monday 4, Tuesday 5
    assert WITH_2027.working_period_end(cst(2026, 12, 28, 10), 5) == cst(2027, 1, 6)
    # 5–11 February off, Saturday 20 worked: from Thursday 18 Feb, 19, 20, 22, 23, 24
    assert WITH_2027.working_period_end(cst(2027, 2, 18, 10), 5) == cst(2027, 2, 25)
    assert WITH_2027.working_period_end(cst(2027, 2, 4, 10), 1) == cst(2027, 2, 13)
    with pytest.raises(Refused, match="working days of 2028 are not known"):
        WITH_2027.working_period_end(cst(2027, 12, 28, 10), 5)


def test_the_supplied_schedule_wins_over_the_shipped_one():
    fixed = WorkCalendar.build(
        SHIPPED.holidays, SHIPPED.workdays, [date(2026, 12, 31)], [date(2026, 10, 7)]
    )
    assert fixed.is_workday(date(2026, 10, 7)) and not fixed.is_workday(date(2026, 12, 31))
    assert fixed.years == SHIPPED.years == frozenset(range(2004, 2027))


@pytest.mark.parametrize(
    ("holidays", "workdays", "message"),
    [
        ([date(2027, 10, 1)], [], "dates of 2027 are given without that year's 1 January"),
        ([date(2027, 1, 1)], [date(2028, 1, 2)], "dates of 2028"),
        ([date(2027, 1, 1)], [date(2027, 1, 1)], "2027-01-01 given both as holiday and as work"),
    ],
)
def test_a_partial_or_contradictory_schedule_is_refused(holidays, workdays, message):
    with pytest.raises(ValueError, match=message):
        WorkCalendar.build(SHIPPED.holidays, SHIPPED.workdays, holidays, workdays)


def test_a_supplied_year_lists_at_least_its_13_statutory_days_off():
    """全国年节及纪念日放假办法 (2024): 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3
    days; a year that lists fewer days off is a partial copy of its notice."""
    thirteen = HOLIDAYS_2027[:13]
    assert len(thirteen) == 13 and thirteen[0] == date(2027, 1, 1)
    assert 2027 in WorkCalendar.build(SHIPPED.holidays, SHIPPED.workdays, thirteen).years
    with pytest.raises(ValueError) as e:
        WorkCalendar.build(SHIPPED.holidays, SHIPPED.workdays, thirteen[:12], WORKDAYS_2027)
    assert str(e.value).startswith(
        "too few days off for 2027: 12 listed, and a year has at least 13 statutory days off"
    )
    assert "国务院办公厅关于2027年部分节假日安排的通知" in str(e.value)
    # make-up working days are not days off; a year the shipped schedule knows is not counted
    with pytest.raises(ValueError, match="too few days off for 2027: 1 listed"):
        WorkCalendar.build(SHIPPED.holidays, SHIPPED.workdays, [date(2027, 1, 1)], WORKDAYS_2027)
    fixed = WorkCalendar.build(SHIPPED.holidays, SHIPPED.workdays, [date(2026, 12, 31)])
    assert not fixed.is_workday(date(2026, 12, 31))


def test_a_calendar_without_a_schedule_knows_no_year():
    with pytest.raises(Refused, match=r"working days of 2026 are not known.*knows no year"):
        WorkCalendar().working_period_end(cst(2026, 12, 7), 5)
    only = WorkCalendar.build([], [], HOLIDAYS_2027, WORKDAYS_2027)
    assert only.years == {2027}
    with pytest.raises(Refused, match=r"knows 2027\)"):
        only.is_workday(date(2026, 12, 31))


def test_calendar_days_and_working_days_share_the_day_rules():
    assert china_day(cst(2026, 12, 7, 23, 59)) == date(2026, 12, 7)
    assert end_of_day(date(2026, 12, 7)) == cst(2026, 12, 8)
    assert period_end(cst(2026, 9, 30, 10), 5) == cst(2026, 10, 6)  # calendar days: holidays count
    with pytest.raises(ValueError, match="at least one day"):
        SHIPPED.working_period_end(cst(2026, 12, 7), 0)
