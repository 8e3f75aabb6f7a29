"""Working-day calendars for the tests: the schedule chinese-calendar ships (2004–2026), and the
same with a schedule of 2027 supplied as a node supplies one in node.toml [calendar]. The 2027
dates have the shape of a State Council notice (every holiday, 春节 with a make-up working day;
more than the 13 statutory days off) but are the tests' own, not the notice's."""

from datetime import date

import chinese_calendar

from domain.calendar import WorkCalendar

HOLIDAYS_2027 = [
    date(2027, 1, 1),
    date(2027, 1, 2),
    date(2027, 1, 3),
    *(date(2027, 2, day) for day in range(5, 12)),
    *(date(2027, 4, day) for day in range(3, 6)),
    *(date(2027, 5, day) for day in range(1, 6)),
    date(2027, 6, 9),
    date(2027, 9, 15),
    *(date(2027, 10, day) for day in range(1, 8)),
]
WORKDAYS_2027 = [date(2027, 2, 20)]  # a Saturday worked (调休上班)

SHIPPED = WorkCalendar.build(chinese_calendar.holidays, chinese_calendar.workdays)
WITH_2027 = WorkCalendar.build(
    chinese_calendar.holidays, chinese_calendar.workdays, HOLIDAYS_2027, WORKDAYS_2027
)
