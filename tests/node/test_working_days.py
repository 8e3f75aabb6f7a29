"""The node counts working days by the shipped schedule and node.toml [calendar]: a period into a
year it does not know is refused until the year's notice is supplied."""

from datetime import date, datetime
from pathlib import Path

import pytest

from domain.base import CHINA, to_ms
from domain.errors import Refused
from node import config as config_mod
from node.errors import ConfigError
from node.service import Node
from tests.conftest import Clock, make_node_dir
from tests.domain.workdays import HOLIDAYS_2027, WORKDAYS_2027
from tests.factories import INSPECTORS, inspection, js

NOTICE = datetime(2026, 12, 28, 10, tzinfo=CHINA)  # Monday: 5 working days run into 2027
CALENDAR_2027 = f"""
[calendar]
holidays = [{", ".join(map(str, HOLIDAYS_2027))}]
workdays = [{", ".join(map(str, WORKDAYS_2027))}]
"""


def node_with(tmp_path, calendar: str = "") -> Node:
    directory = make_node_dir(tmp_path / "county")
    toml = directory / config_mod.CONFIG_FILE
    toml.write_text(toml.read_text(encoding="utf-8") + calendar, encoding="utf-8")
    return Node(config_mod.load(directory, environ={}), clock=Clock(to_ms(NOTICE)))


def notify(node: Node) -> dict:
    started = datetime(2026, 12, 28, 9, tzinfo=CHINA).isoformat()
    case = node.execute("case.open-inspection", js(inspection(started_at=started)), user="u")
    target = case["id"]
    node.execute("case.file", js({"violations": "违法"}), user="u", target=target)
    evidence = {"evidence_type": "书证", "description": "d", "collected_by": INSPECTORS}
    node.execute("case.record-evidence", js(evidence), user="u", target=target)
    notice = {"penalties": [{"type": "warning"}], "facts": "f"}
    return node.execute("case.notify-penalty", js(notice), user="u", target=target)


def test_without_the_year_s_schedule_the_notice_is_refused(tmp_path):
    node = node_with(tmp_path)
    try:
        assert node.context("u").calendar.years == frozenset(range(2004, 2027))
        with pytest.raises(Refused, match=r"2027 are not known.*node.toml, \[calendar\]"):
            notify(node)
    finally:
        node.close()


def test_with_the_year_s_schedule_the_notice_counts_it(tmp_path):
    node = node_with(tmp_path, CALENDAR_2027)
    try:
        record = notify(node)["record"]
        # 29, 30, 31 December, (1–3 January off), 4 and 5 January: closes at 24:00 on the 5th
        assert record["notice"]["hearing_window_ends"] == "2027-01-06T00:00:00+08:00"
    finally:
        node.close()


def test_a_partial_schedule_stops_the_node_from_starting(tmp_path):
    with pytest.raises(ConfigError, match=r"\[calendar\]: dates of 2027 .*1 January"):
        node_with(tmp_path, "\n[calendar]\nholidays = [2027-10-01]\n")


def test_a_year_with_fewer_than_its_statutory_days_off_stops_the_node_from_starting(tmp_path):
    # 1 January makes 2027 known, but 3 days off are not a whole notice (13 statutory days)
    calendar = "\n[calendar]\nholidays = [2027-01-01, 2027-01-02, 2027-01-03]\n"
    with pytest.raises(ConfigError, match=r"^\[calendar\]: too few days off for 2027: 3 listed"):
        node_with(tmp_path, calendar)


def uncommented_calendar(text: str) -> str:
    """The commented [calendar] example of a node.toml, its comment marks taken off."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [calendar]"))
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line.removeprefix("# "))
    return "\n" + "\n".join(block) + "\n"


def test_the_example_calendar_is_a_whole_year_s_notice(tmp_path):
    rendered = (make_node_dir(tmp_path / "rendered") / config_mod.CONFIG_FILE).read_text()
    example = uncommented_calendar(rendered)
    for tier in ("county", "city", "province", "national", "backup"):
        shipped = Path(__file__).parents[2] / "config" / f"{tier}.toml"
        assert uncommented_calendar(shipped.read_text(encoding="utf-8")) == example, tier
    # 2026's notice as the example gives it, and the same days moved to a year not shipped
    assert "holidays = [" in example and "2026-10-07" in example
    for year in ("2026", "2027"):
        node = node_with(tmp_path / year, example.replace("2026-", f"{year}-"))
        try:
            calendar = node.context("u").calendar
            assert int(year) in calendar.years
            assert not calendar.is_workday(date(int(year), 10, 7))
            assert calendar.is_workday(date(int(year), 10, 10))
        finally:
            node.close()
