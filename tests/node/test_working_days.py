"""The node counts working days by the shipped schedule and node.toml [calendar]: a period into a
year it does not know is refused until the year's notice is supplied."""

from datetime import datetime

import pytest

from domain.base import CHINA, to_ms
from domain.errors import Refused
from node import config as config_mod
from node.errors import ConfigError
from node.service import Node
from tests.conftest import Clock, make_node_dir
from tests.factories import INSPECTORS, inspection, js

NOTICE = datetime(2026, 12, 28, 10, tzinfo=CHINA)  # Monday: 5 working days run into 2027
CALENDAR_2027 = """
[calendar]
holidays = [2027-01-01, 2027-01-02, 2027-01-03]
workdays = []
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
