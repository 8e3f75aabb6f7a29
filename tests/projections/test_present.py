"""What a person reads of every query: no epoch number and no scaled integer anywhere, every
code with its label, flags as booleans (是/否 in CSV), China time; CSV with a BOM and a header
even when empty; XLSX totals equal to the JSON's; the national reports' layouts."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest

from domain.base import DAY_MS, to_ms
from domain.sensors.readings import WINDOW_MS
from node import config as config_mod
from node import reports
from node.projector import log_events
from node.service import Node
from projections import present
from projections.queries import QUERIES, Filters, columns_of, run
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import (
    INSPECTORS,
    SITE_CODE,
    accident,
    credit_code,
    enterprise,
    inspection,
    js,
    site,
)

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)
NOW_MS = to_ms(NOW)
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?\+08:00$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def _node(tmp, tier, region):
    d = make_node_dir(tmp / region, tier=tier, region=region)
    return Node(config_mod.load(d, environ={}), clock=Clock(NOW_MS - 40 * DAY_MS))


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    """A county's records of every kind, and a licence the province issued, in one store (as
    the province sees them): each query then has rows to present."""
    tmp = tmp_path_factory.mktemp("present")
    county = _node(tmp, "county", "130102")
    run_ = county.execute
    run_("enterprise.register", js(enterprise()), user="u")
    unlicensed = enterprise(credit_code=credit_code(2), name="长安某矿业有限公司")
    run_("enterprise.register", js(unlicensed), user="u")
    occurred = datetime.fromtimestamp(county.clock() / 1000, UTC) - timedelta(hours=2)
    run_("accident.report", js(accident(occurred, deaths=3, direct_loss_yuan=1_234_567)), user="u")
    run_(
        "accident.report",
        js(accident(occurred, deaths=0, serious_injuries=2, industry="road_traffic")),
        user="u",
    )
    unregistered = accident(occurred, enterprise_credit_code=credit_code(9))
    run_("accident.report", js(unregistered), user="u")
    case = run_("case.open-inspection", js(inspection(started_at=occurred.isoformat())), user="u")
    c = case["id"]
    run_(
        "case.record-hazard", js({"hazard_class": "major", "description": "d"}), user="u", target=c
    )
    run_(
        "case.record-hazard",
        js({"hazard_class": "general", "description": "d", "rectified_on_site": True}),
        user="u",
        target=c,
    )
    run_("case.file", js({"violations": "违法"}), user="u", target=c)
    run_(
        "case.record-evidence",
        js({"evidence_type": "书证", "description": "d", "collected_by": INSPECTORS}),
        user="u",
        target=c,
    )
    penalties = [{"type": "fine", "amount_yuan": 50000}, {"type": "warning"}]
    run_("case.notify-penalty", js({"penalties": penalties, "facts": "f"}), user="u", target=c)
    county.clock.now_ms += 10 * DAY_MS
    run_(
        "case.decide-penalty",
        js({"penalties": penalties, "decision_no": "长安罚〔2026〕1号"}),
        user="u",
        target=c,
    )
    s = run_("sensor.register-site", js(site()), user="u")["id"]
    body = {"point_code": "CH4-01", "sensor_type": "methane", "location": "upper_corner"}
    run_("sensor.register-point", js(body), user="u", target=s)
    run_(
        "sensor.register-point",
        js({"point_code": "CO-01", "sensor_type": "co"}),
        user="u",
        target=s,
    )
    t0 = county.clock() - 3 * WINDOW_MS
    readings = [
        {"point": "CH4-01", "t": t0, "value": 0.62},
        {"point": "CH4-01", "t": t0 + 10_000, "value": 1.58},
        {"point": "CH4-01", "t": t0 + WINDOW_MS, "value": 0.91},
        {"point": "CO-01", "t": t0 + WINDOW_MS, "value": 50},  # an alarm in force
    ]
    county.ingest(SITE_CODE, js({"readings": readings}), user="u")
    events = log_events(county.log, 0, 100_000)
    county.close()
    province = _node(tmp, "province", "130000")
    lic = province.execute(
        "licence.apply",
        js(
            {
                "enterprise_credit_code": credit_code(1),
                "enterprise_name": "石家庄某煤业有限公司",
                "industry": "coal_mine",
                "division": "130102",
                "scope": "煤炭开采",
            }
        ),
        user="li",
    )["id"]
    province.execute("licence.accept", "{}", user="li", target=lic)
    issued = datetime.fromtimestamp(province.clock() / 1000, UTC).isoformat()
    number = js({"number": "（冀）MK安许证字〔2024〕0012", "valid_from": issued})
    province.execute("licence.issue", number, user="li", target=lic)
    events += log_events(province.log, 0, 100_000)
    province.close()
    store = ProjectionStore(tmp / "view.db")
    ordered = sorted(events, key=lambda e: (e.origin, e.position))
    store.apply([dataclasses.replace(e, position=i + 1) for i, e in enumerate(ordered)])
    return store


def _units(db):
    table = reports._unit_table(db)
    return lambda site_code, point: table.get((site_code, point))


def _looks_raw(name, value):
    """An epoch number or a scaled integer where a person reads a value."""
    col = present.COLUMNS.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**11:
        return True  # milliseconds since 1970 (2003 onwards)
    return col is not None and col.kind == "sensor" and isinstance(value, int) and value > 100


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_query_reads_as_a_person_reads_it(view, name):
    db = view.db
    filters = Filters(as_of=NOW_MS, level="city")
    columns = columns_of(db, name, filters)
    assert columns, name
    unknown = [c for c in columns if c not in present.COLUMNS and c not in present.HIDDEN]
    unknown = [c for c in unknown if c not in present.RAW]
    assert not unknown, f"{name}: columns no one has said how to show: {unknown}"
    rows = present.present(name, run(db, name, filters), units=_units(db))
    if name not in ("accident-receipts", "accident-findings", "duplicate_codes"):
        assert rows, f"{name}: the fixture should give it rows"
    for row in rows:
        for key, value in row.items():
            assert not _looks_raw(key, value), (name, key, value)
            col = present.COLUMNS.get(key)
            if col is None:
                continue
            if col.kind == "time" and value is not None:
                assert ISO.match(value), (name, key, value)
            if col.kind in ("date", "last_day") and value is not None:
                assert DATE.match(value), (name, key, value)
            if col.kind == "bool":
                assert value is None or isinstance(value, bool), (name, key, value)
            if col.kind == "code" and (col.vocabulary or name in present._KIND_VOCABULARY):
                assert f"{key}_label" in row, (name, key)
            if col.kind == "division":
                assert f"{key}_name" in row, (name, key)
            assert not isinstance(value, dict | list), (name, key, "nested")
        table = present.register(name, name, rows, columns)
        text = present.csv_text(table)
        assert "\n[" not in text and ',"{' not in text  # no JSON in a cell


def test_sensor_values_are_in_their_unit(view):
    db = view.db
    f = Filters(as_of=NOW_MS)
    points = present.present("points", run(db, "points", f))
    ch4, co = points
    assert ch4["latest_max"] == 0.91 and ch4["unit"] == "%" and ch4["sensor_type_label"] == "甲烷"
    assert co["latest_max"] == 50 and co["unit"] == "ppm" and co["sensor_type_label"] == "一氧化碳"
    alarms = present.present("excursions", run(db, "excursions", f), units=_units(db))
    assert {(x["kind"], x["start_value"], x["unit"]) for x in alarms} >= {("alarm", 1.58, "%")}
    assert {x["kind_label"] for x in alarms} >= {"报警", "断电"}
    summaries = present.present("summaries", run(db, "summaries", f), units=_units(db))
    assert {(s["point"], s["max"], s["unit"]) for s in summaries} == {
        ("CH4-01", 1.58, "%"),
        ("CH4-01", 0.91, "%"),
        ("CO-01", 50, "ppm"),
    }


def test_times_in_china_time_or_epoch_on_request(view):
    f = Filters(as_of=NOW_MS)
    raw = run(view.db, "accidents", f)
    shown = present.present("accidents", raw)
    epoch = present.present("accidents", raw, time="epoch")
    assert shown[0]["occurred_at"].endswith("+08:00")
    assert epoch[0]["occurred_at"] == raw[0]["occurred_at"]
    assert shown[0]["grade_label"] in ("较大", "一般")
    assert shown[0]["division_name"] == "长安区"
    assert isinstance(shown[0]["late_report"], bool)
    licences = present.present("licences", run(view.db, "licences", f))
    assert DATE.match(licences[0]["valid_from"]) and DATE.match(licences[0]["valid_until"])


def test_an_empty_csv_has_its_bom_and_header(view):
    f = Filters(as_of=NOW_MS, region="140000")  # 山西: nothing there
    rows = present.present("accidents", run(view.db, "accidents", f))
    assert rows == []
    table = present.register("accidents", "事故", rows, columns_of(view.db, "accidents", f))
    text = present.csv_text(table)
    assert text.startswith("\ufeff")
    header = next(csv.reader(io.StringIO(text[1:])))
    assert "发生时间" in header and "事故等级" in header and "事故等级名称" in header
    assert text.count("\n") == 1


def test_flags_read_yes_or_no_in_csv(view):
    f = Filters(as_of=NOW_MS)
    rows = present.present("licences", run(view.db, "licences", f))
    table = present.register("licences", "许可证", rows, columns_of(view.db, "licences", f))
    body = list(csv.DictReader(io.StringIO(present.csv_text(table)[1:])))
    assert body[0]["已过有效期"] in ("是", "否")
    assert body[0]["90日内到期"] in ("是", "否")


def _sheet_rows(data):
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book}


def test_statistics_as_xlsx_with_title_totals_and_the_national_layouts(view):
    f = Filters(as_of=NOW_MS, level="city", region="130000")
    rows = present.present("accident-stats", run(view.db, "accident-stats", f))
    report = reports.Report("accident-stats", f, rows, columns_of(view.db, "accident-stats", f))
    sheets = _sheet_rows(reports.workbook(report, None))
    first, by_region, by_industry = sheets.values()
    assert first[0][0].startswith("生产安全事故统计（河北省")
    titles = first[1]
    assert "事故起数" in titles and "死亡人数" in titles and "直接经济损失（元）" in titles
    total = first[-1]
    assert total[0] == "合计"
    for key, title in (("accidents", "事故起数"), ("deaths", "死亡人数")):
        assert total[titles.index(title)] == sum(r[key] for r in rows)
    loss = total[titles.index("直接经济损失（元）")]
    assert loss == sum(r["direct_loss_yuan"] for r in rows) == 1_234_567
    assert total[titles.index("直接经济损失（万元）")] == pytest.approx(123.4567)
    # 按地区和等级: one region (石家庄市), its totals and per-grade columns
    assert by_region[1][:3] == ["地区代码", "地级行政区", "事故起数"]
    assert by_region[2][1] == "石家庄市" and by_region[2][2] == 3
    assert by_region[2][by_region[1].index("较大事故起数")] == 1
    assert by_region[-1][0] == "合计" and by_region[-1][2] == 3
    assert by_region[-1][by_region[1].index("直接经济损失（万元）")] == pytest.approx(123.4567)
    assert {r[1] for r in by_industry[2:-1]} == {"煤矿", "道路交通"}


def test_enforcement_statistics_in_the_indicators_layout(view):
    f = Filters(as_of=NOW_MS, level="county")
    rows = present.present("enforcement-stats", run(view.db, "enforcement-stats", f))
    table = present.enforcement_indicators(rows, "县级行政区")
    line = table.rows[0]
    assert line["region_name"] == "长安区"
    assert line["inspections"] == 1 and line["major_hazards"] == 1 and line["general_hazards"] == 1
    assert line["general_rectification_rate"] == 1.0 and line["major_rectification_rate"] == 0.0
    assert line["fines_wan"] == 5.0 and line["warnings"] == 1
    assert table.totals["fines_wan"] == 5.0 and table.totals["cases"] == 1
    text = present.csv_text(table)
    assert "罚款金额（万元）" in text.splitlines()[0] and text.splitlines()[-1].startswith("合计")
    assert json.dumps(table.rows, ensure_ascii=False)  # JSON-ready


def test_text_a_spreadsheet_would_run_is_quoted():
    table = present.Table("t", [("name", "名称")], [{"name": v} for v in ("=1+1", "＝1+1", "@x")])
    body = present.csv_text(table).splitlines()[1:]
    assert body == ["'=1+1", "'＝1+1", "'@x"]
