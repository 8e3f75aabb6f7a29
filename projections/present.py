"""Query rows as a person reads them, and as bureaus file them.

The stored tables keep what programs compute with: times in milliseconds, sensor values as
integers with their scale, flags as 0/1, codes. A person reads China time (ISO 8601 with
+08:00; a licence's validity as dates), sensor values in their unit, money in 元 (万元 in
statistics), flags as booleans (是/否 in a spreadsheet), and every code with its Chinese label
beside it. ``COLUMNS`` says what each column of every query is; ``present`` turns rows into
that (``time="epoch"`` keeps milliseconds, for programs that ask); ``LAYOUTS`` are the shapes of
the national statistical reports, built from the statistics rows; ``csv_text`` and ``xlsx``
write files a spreadsheet opens."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

import xlsxwriter

from domain.base import CHINA, from_ms, iso
from domain.labels import division_name, label

# -- what each column is -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """``kind``: text, id, count, number, time, date, last_day, bool, code, division, money,
    rate, sensor, minutes; ``title``: its Chinese title; ``vocabulary``: a code's
    (domain.labels)."""

    kind: str
    title: str
    vocabulary: str | None = None


def _c(kind: str, title: str, vocabulary: str | None = None) -> Column:
    return Column(kind, title, vocabulary)


COLUMNS: dict[str, Column] = {
    # records and their people
    "id": _c("id", "记录编号"),
    "origin": _c("division", "记录节点"),
    "enterprise_id": _c("id", "企业记录编号"),
    "enterprise_name": _c("text", "企业名称"),
    "enterprise_credit_code": _c("text", "统一社会信用代码"),
    "enterprise_name_key": _c("text", "企业名称（比对用）"),
    "credit_code": _c("text", "统一社会信用代码"),
    "name": _c("text", "名称"),
    "number": _c("text", "许可证编号"),
    "place": _c("text", "事故地点"),
    "summary": _c("text", "事故简要经过"),
    "basis": _c("text", "认定依据"),
    "bureau": _c("text", "责任单位"),
    "licence_id": _c("id", "许可证记录编号"),
    "accident_id": _c("id", "事故记录编号"),
    "record_id": _c("id", "记录编号"),
    "raw_sha256": _c("text", "原始数据SHA-256"),
    # places
    "division": _c("division", "行政区划"),
    "county": _c("division", "县级行政区"),
    "city": _c("division", "地级行政区"),
    "province": _c("division", "省级行政区"),
    "region": _c("division", "地区"),
    "must_reach_region": _c("division", "须报至地区"),
    "due_from": _c("division", "起算地区"),
    "reporting_origin": _c("division", "报告节点"),
    "code_division": _c("division", "登记机关所在区划"),
    "registered_in": _c("text", "登记所在区划"),
    # times
    "occurred_at": _c("time", "发生时间"),
    "reported_at": _c("time", "报告时间"),
    "report_recorded_at": _c("time", "报告记录时间"),
    "received_at": _c("time", "接收时间"),
    "due_from_at": _c("time", "起算时间"),
    "deadline": _c("time", "期限"),
    "recorded_at": _c("time", "记录时间"),
    "started_at": _c("time", "开始时间"),
    "ended_at": _c("time", "结束时间"),
    "order_deadline": _c("time", "整改期限"),
    "applied_at": _c("time", "申请时间"),
    "valid_from": _c("date", "有效期起"),
    "valid_until": _c("last_day", "有效期至"),
    "at": _c("time", "时间"),
    "last_at": _c("time", "最近记录时间"),
    "latest_window": _c("time", "最近时间窗"),
    "window_start": _c("time", "时间窗开始"),
    "window_end": _c("time", "时间窗结束"),
    "month": _c("text", "月份"),
    "duration_minutes": _c("minutes", "持续时间（分钟）"),
    "minutes_late": _c("count", "迟报分钟数"),
    # codes
    "grade": _c("code", "事故等级", "grade"),
    "industry": _c("code", "行业", "industry"),
    "status": _c("code", "状态", "licence_status"),
    "stage": _c("code", "办理阶段", "stage"),
    "tier": _c("code", "层级", "tier"),
    "reporting_tier": _c("code", "报告节点层级", "tier"),
    "must_reach_tier": _c("code", "须报至层级", "tier"),
    "investigation": _c("code", "调查状态", "investigation"),
    "finding": _c("code", "认定", "finding"),
    "subject": _c("code", "认定对象", "subject"),
    "kind": _c("code", "类别", None),  # excursions or exceptions: see _KIND_VOCABULARY
    "record_kind": _c("code", "记录类别", "record_kind"),
    "field": _c("code", "不一致项", "field"),
    "sensor_type": _c("code", "传感器类型", "sensor"),
    "label": _c("text", "类别名称"),
    "location": _c("text", "安装位置"),
    "point": _c("text", "测点"),
    "site_code": _c("text", "站点编码"),
    "unit": _c("text", "单位"),
    "recorded_value": _c("text", "记录值"),
    "registered_value": _c("text", "台账值"),
    # flags
    "near_miss": _c("bool", "较大涉险"),
    "late_report": _c("bool", "迟报"),
    "voided": _c("bool", "已作废"),
    "on_time": _c("bool", "按时"),
    "report_held": _c("bool", "本节点有报告"),
    "required": _c("bool", "本层级须接报"),
    "overdue": _c("bool", "已逾期"),
    "expiring_within_90_days": _c("bool", "90日内到期"),
    "past_validity": _c("bool", "已过有效期"),
    "retired": _c("bool", "已停用"),
    # counts and amounts
    "deaths": _c("count", "死亡人数"),
    "missing": _c("count", "失踪人数"),
    "serious_injuries": _c("count", "重伤人数"),
    "direct_loss_yuan": _c("money", "直接经济损失（元）"),
    "direct_loss_wan": _c("number", "直接经济损失（万元）"),
    "must_reach_steps": _c("count", "须上报层数"),
    "supplements": _c("count", "补报次数"),
    "reporting_seq": _c("count", "报告序号"),
    "tiers_above": _c("count", "上级层数"),
    "accidents": _c("count", "事故起数"),
    "late_unit": _c("count", "单位迟报起数"),
    "late_onward": _c("count", "逐级迟报起数"),
    "omitted": _c("count", "漏报起数"),
    "falsified": _c("count", "谎报起数"),
    "concealed": _c("count", "瞒报起数"),
    "inspections": _c("count", "检查生产经营单位家次"),
    "general_hazards": _c("count", "发现一般隐患数"),
    "general_rectified": _c("count", "一般隐患已整改数"),
    "general_rectification_rate": _c("rate", "一般隐患整改率"),
    "major_hazards": _c("count", "发现重大隐患数"),
    "major_rectified": _c("count", "重大隐患已整改数"),
    "major_rectification_rate": _c("rate", "重大隐患整改率"),
    "open_hazards": _c("count", "未整改隐患数"),
    "cases": _c("count", "立案数"),
    "fines_yuan": _c("money", "罚款金额（元）"),
    "fines_wan": _c("number", "罚款金额（万元）"),
    "warnings": _c("count", "警告次数"),
    "shutdowns_ordered": _c("count", "责令停产停业家数"),
    "licences_suspended": _c("count", "暂扣许可证数"),
    "licences_revoked": _c("count", "吊销许可证数"),
    "licence_suspensions_recommended": _c("count", "提请暂扣许可证数"),
    "licence_revocations_recommended": _c("count", "提请吊销许可证数"),
    "closures": _c("count", "关闭取缔家数"),
    "events": _c("count", "事件数"),
    "unknown_types": _c("count", "未知类型事件数"),
    "reading_count": _c("count", "监测数据条数"),
    "latest_count": _c("count", "最近时间窗数据条数"),
    "count": _c("count", "测点数据条数"),
    "flagged": _c("count", "标校或故障状态数据条数"),
    "faulty": _c("count", "超量程数据条数"),
    "unknown": _c("count", "未知类型事件数"),
    # sensor values, in their unit
    "latest_min": _c("sensor", "最近时间窗最小值"),
    "latest_mean": _c("sensor", "最近时间窗平均值"),
    "latest_max": _c("sensor", "最近时间窗最大值"),
    "start_value": _c("sensor", "开始值"),
    "end_value": _c("sensor", "结束值"),
    "threshold": _c("sensor", "门限值"),
    "min": _c("sensor", "最小值"),
    "mean": _c("sensor", "平均值"),
    "max": _c("sensor", "最大值"),
}
SUMMARY_POINT = ("point", "count", "flagged", "faulty", "min", "mean", "max")  # a summary's points
# a column ``kind`` means an excursion's kind in the sensor queries, a flag's in exceptions
_KIND_VOCABULARY = {"alarms": "excursion", "excursions": "excursion", "exceptions": "exception"}
WAN = {"direct_loss_yuan": "direct_loss_wan", "fines_yuan": "fines_wan"}  # 元 → 万元
# machine columns a person does not read: left out of what is presented
HIDDEN = {"scale", "enterprise_name_key"}
# the projections' own columns that queries never show raw (turned into others by ``present``)
RAW = {"duration_ms": "duration_minutes", "points": "point"}


def column(name: str) -> Column:
    """What a column is; KeyError for a column this module does not know (a test walks every
    query's columns so none is shown unexamined)."""
    return COLUMNS[name]


# -- rows as a person reads them ---------------------------------------------------------------
Units = Callable[[str, str], tuple[int, str] | None]  # (site code, point) -> (scale, unit)


def present(
    query: str,
    rows: Iterable[Mapping[str, Any]],
    time: str = "iso",
    units: Units | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``query`` as JSON shows them: times in China time (``time="epoch"``:
    milliseconds, for a program that asks), sensor values in their unit (with ``unit``),
    flags as booleans, each code followed by its label (``<code>_label``, ``<division>_name``);
    a summary's points each a row of their own."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if query == "summaries":
            out += [_row(query, r, time, units) for r in _summary_points(row)]
        else:
            out.append(_row(query, row, time, units))
    return out


def _summary_points(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    base = {k: v for k, v in row.items() if k != "points"}
    points = json.loads(row["points"]) if isinstance(row.get("points"), str) else []
    if not points:
        return [{**base, "point": None}]
    return [{**base, **{k: v for k, v in p.items()}} for p in points]


def _row(query: str, row: Mapping[str, Any], time: str, units: Units | None) -> dict[str, Any]:
    steps, sensors = _plan(query, tuple(row), time)
    scale, unit = _scale(row, units)
    out: dict[str, Any] = {}
    for name, key, convert, extra, also in steps:
        value = row[name]
        out[key] = value if value is None or convert is None else convert(value, scale)
        if also is not None:  # money in 万元 too, or a code's label, a division's name
            out[extra] = None if value is None else also(value)
    if scale is not None and sensors:
        out["unit"] = unit
    return out


# (column, key shown, how its value is shown, key of what follows it, how that is made)
Step = tuple[str, str, Callable[[Any, int | None], Any] | None, str, Callable[[Any], Any] | None]


@lru_cache(maxsize=512)
def _plan(query: str, names: tuple[str, ...], time: str) -> tuple[tuple[Step, ...], bool]:
    """How each column of rows with these ``names`` is presented (a Step each), worked out
    once, and whether a column holds sensor values. KeyError for a column this module does not
    know."""
    steps: list[Step] = []
    for name in names:
        if name in HIDDEN:
            continue
        if name == "duration_ms":
            steps.append((name, "duration_minutes", _minutes, "", None))
            continue
        col = COLUMNS[name]
        convert = _converter(col.kind, time)
        if query.endswith("-stats") and name in WAN:  # statistics give money in 万元 too
            steps.append((name, name, convert, WAN[name], _wan))
        elif col.kind == "code" and (col.vocabulary or _KIND_VOCABULARY.get(query)):
            vocabulary = col.vocabulary or _KIND_VOCABULARY[query]
            steps.append((name, name, convert, name + "_label", partial(label, vocabulary)))
        elif col.kind == "division":
            steps.append((name, name, convert, name + "_name", division_name))
        else:
            steps.append((name, name, convert, "", None))
    return tuple(steps), any(COLUMNS[n].kind == "sensor" for n in names if n in COLUMNS)


def _minutes(value: Any, _scale: int | None) -> Any:
    return round(value / 60_000, 1)


def _converter(kind: str, time: str) -> Callable[[Any, int | None], Any] | None:
    """How a value of this kind is shown; None: as it is."""
    if kind in ("time", "date", "last_day") and time == "epoch":
        return None
    return _CONVERTERS.get(kind)


_CONVERTERS: dict[str, Callable[[Any, int | None], Any]] = {
    "time": lambda value, _scale: iso(value),
    "date": lambda value, _scale: from_ms(value).astimezone(CHINA).date().isoformat(),
    # valid until the end of this day: the instant after it, one ms back
    "last_day": lambda value, _scale: from_ms(value - 1).astimezone(CHINA).date().isoformat(),
    "bool": lambda value, _scale: bool(value),
    # an integer at ``scale`` decimal digits: 9100 at 4 is 0.91
    "sensor": lambda value, scale: (
        float(Decimal(value).scaleb(-scale)) if scale is not None else value
    ),
}


def _scale(row: Mapping[str, Any], units: Units | None) -> tuple[int | None, str | None]:
    if "scale" in row:
        return row["scale"], row.get("unit")
    if units is not None and "site_code" in row and row.get("point"):
        found = units(row["site_code"], row["point"])
        if found is not None:
            return found
    return None, None


# -- the log's entries -------------------------------------------------------------------------
# the time fields of the events' payloads (domain/: milliseconds since 1970)
EVENT_TIMES = {
    "deadline",
    "new_deadline",
    "hearing_window_ends",
    "service_due",
    "t",
    "until",
    "valid_from",
    "valid_until",
    "window_start",
    "window_end",
}


def entry_times(value: Any, key: str = "") -> Any:
    """A log entry (``GET /api/v1/events``) with its times in China time: ``recorded_at`` and
    each time of the payload (its ``*_at`` fields and ``EVENT_TIMES``), at any depth. The rest
    is as recorded (sensor values as integers at their point's scale)."""
    if isinstance(value, dict):
        return {k: entry_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [entry_times(v, key) for v in value]
    is_time = key.endswith("_at") or key in EVENT_TIMES
    if is_time and isinstance(value, int) and not isinstance(value, bool):
        return iso(value)
    return value


# -- the shapes of the national reports ----------------------------------------------------------
GRADE_ORDER = ("especially_major", "major", "larger", "general", "near_miss")


@dataclass(frozen=True)
class Table:
    """A report's table: its title, its columns (key, Chinese title), its rows, its totals."""

    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] | None = None
    totals_label: str = "合计"


def register(query: str, title: str, rows: list[dict[str, Any]], columns: Sequence[str]) -> Table:
    """A query's presented rows as a table with Chinese column titles and, for statistics, a
    totals row (counts and amounts summed, rates computed again from the sums)."""
    keys = (
        _presented_columns(query, columns)
        if not rows
        else list(dict.fromkeys(k for r in rows for k in r))
    )
    titled = [(k, _title(k)) for k in keys if k not in HIDDEN_IN_FILES]
    if query.endswith("-stats"):
        return Table(title, titled, rows, _totals(rows, keys))
    if not rows:  # the header alone
        return Table(title, titled, rows)
    sums = {k: _sum(rows, k) for k in keys if k in REGISTER_SUMS}
    return Table(title, titled, rows, sums, f"合计（{len(rows)} 条）")


def _presented_columns(query: str, columns: Sequence[str]) -> list[str]:
    """The columns ``present`` gives a query whose SQL has ``columns`` (for an empty result)."""
    sample = dict.fromkeys(columns)
    if query == "summaries":
        sample.pop("points", None)
        sample.update(dict.fromkeys(SUMMARY_POINT))
    row = _row(query, sample, "iso", None)
    if any(COLUMNS.get(k, Column("", "")).kind == "sensor" for k in sample):
        row["unit"] = None
    return list(row)


# a register's totals: what adds up across its rows (a record count is given too)
REGISTER_SUMS = {
    "deaths",
    "missing",
    "serious_injuries",
    "direct_loss_yuan",
    "open_hazards",
    "minutes_late",
    "count",  # a summary's points' (its window's reading_count repeats on each point's row)
}
# columns a file leaves out: ``label`` repeats a flag's or a finding's own label column
HIDDEN_IN_FILES = {"label"}

# titles of the keys a record, a status or a report shows besides the queries' columns
KEY_TITLES = {
    "version": "版本",
    "created_at": "创建时间",
    "modified_at": "修改时间",
    "history": "历史",
    "event": "事件",
    "actor": "记录人",
    "user": "用户",
    "node": "节点",
    "role": "角色",
    "action": "操作",
    "result": "结果",
    "remote": "来源地址",
    "target": "对象",
    "directory": "目录",
    "address": "地址",
    "closed": "已关闭",
    "note": "说明",
    "reason": "原因",
    "token_expires": "令牌到期时间",
    "token_expired": "令牌已过期",
    "password": "已设密码",
    "unit_report": "单位报告",
    "late": "迟报",
    "trapped": "涉险人数",
    "measures_taken": "已采取措施",
    "event_count": "事件数",
    "clock": "节点时间",
    "tier_label": "层级名称",
    # words the queries' columns use in another sense
    "warnings": "警示",
    "number": "编号",
    "subject": "事由",
    "open_hazards": "未整改隐患",
    "count": "数量",
    "events": "事件",
}


def title(key: str) -> str:
    """The Chinese title of a key a person reads (a column, a record's field), the key itself
    when it has none."""
    return KEY_TITLES.get(key) or _title(key)


def _title(key: str) -> str:
    for suffix, what in (("_label", "名称"), ("_name", "名称")):
        if key.endswith(suffix) and key.removesuffix(suffix) in COLUMNS:
            base = COLUMNS[key.removesuffix(suffix)].title
            return base if base.endswith("名称") else base + what
    return COLUMNS[key].title if key in COLUMNS else key


def _totals(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    sums: dict[str, Any] = {}
    for key in keys:
        col = COLUMNS.get(key)
        if col is not None and col.kind in ("count", "money", "number"):
            sums[key] = _sum(rows, key)
    for rate, done, found in (
        ("general_rectification_rate", "general_rectified", "general_hazards"),
        ("major_rectification_rate", "major_rectified", "major_hazards"),
    ):
        if rate in keys:
            sums[rate] = round(sums[done] / sums[found], 4) if sums.get(found) else None
    return sums


def _sum(rows: Iterable[Mapping[str, Any]], key: str) -> Any:
    total = sum((r.get(key) or 0) for r in rows)
    return round(total, 4) if isinstance(total, float) else total


def _wan(yuan: int | float | None) -> float:
    return round((yuan or 0) / 10_000, 4)


def accident_by_region_and_grade(rows: list[dict[str, Any]], level_title: str) -> Table:
    """生产安全事故统计 by region × grade: for each region the totals (起数, 死亡（含失踪）, 重伤,
    直接经济损失（万元）) and, per grade, 起数 and 死亡 (``accident-stats`` rows, any level)."""
    regions: dict[str, dict[str, Any]] = {}
    for r in rows:
        out = regions.setdefault(
            r["region"],
            {
                "region": r["region"],
                "region_name": r.get("region_name"),
                "accidents": 0,
                "deaths": 0,
                "serious_injuries": 0,
                "direct_loss_wan": 0.0,
            }
            | {f"{g}_{m}": 0 for g in GRADE_ORDER for m in ("accidents", "deaths")},
        )
        _add(out, r)
        out[f"{r['grade']}_accidents"] += r["accidents"] or 0
        out[f"{r['grade']}_deaths"] += _deaths(r)
    body = sorted(regions.values(), key=lambda x: x["region"] or "")
    columns = [("region", "地区代码"), ("region_name", level_title), *_TOTAL_COLUMNS]
    for g in GRADE_ORDER:
        name = label("grade", g)
        columns += [
            (f"{g}_accidents", f"{name}事故起数"),
            (f"{g}_deaths", f"{name}事故死亡（含失踪）人数"),
        ]
    return Table("生产安全事故统计（按地区、等级）", columns, body, _totals_of(body, columns))


def accident_by_industry(rows: list[dict[str, Any]]) -> Table:
    """生产安全事故统计 by industry: 起数, 死亡（含失踪）, 重伤, 直接经济损失（万元）."""
    industries: dict[str, dict[str, Any]] = {}
    for r in rows:
        out = industries.setdefault(
            r["industry"],
            {
                "industry": r["industry"],
                "industry_label": label("industry", r["industry"]),
                "accidents": 0,
                "deaths": 0,
                "serious_injuries": 0,
                "direct_loss_wan": 0.0,
            },
        )
        _add(out, r)
    body = sorted(industries.values(), key=lambda x: x["industry"] or "")
    columns = [("industry", "行业代码"), ("industry_label", "行业"), *_TOTAL_COLUMNS]
    return Table("生产安全事故统计（按行业）", columns, body, _totals_of(body, columns))


_TOTAL_COLUMNS = [
    ("accidents", "事故起数"),
    ("deaths", "死亡（含失踪）人数"),
    ("serious_injuries", "重伤人数"),
    ("direct_loss_wan", "直接经济损失（万元）"),
]


def _deaths(r: Mapping[str, Any]) -> int:
    # the statistics count the missing with the dead (统计调查制度; 493号令 Art. 12(4))
    return int(r.get("deaths") or 0) + int(r.get("missing") or 0)


def _add(out: dict[str, Any], r: Mapping[str, Any]) -> None:
    out["accidents"] += r.get("accidents") or 0
    out["deaths"] += _deaths(r)
    out["serious_injuries"] += r.get("serious_injuries") or 0
    out["direct_loss_wan"] = round(out["direct_loss_wan"] + _wan(r.get("direct_loss_yuan")), 4)


def enforcement_indicators(rows: list[dict[str, Any]], level_title: str) -> Table:
    """安全生产执法统计 by region, the indicators bureaus publish (docs/domain.md): 检查家次,
    隐患 found / rectified / rate (一般, 重大), 立案, 罚款（万元）, 警告, 责令停产停业, 暂扣 and
    吊销许可证, 关闭取缔."""
    regions: dict[str, dict[str, Any]] = {}
    counted = [k for k, _t in _ENFORCEMENT if k not in ("fines_wan",) and not k.endswith("rate")]
    for r in rows:
        out = regions.setdefault(
            r["region"],
            {"region": r["region"], "region_name": r.get("region_name"), "fines_wan": 0.0}
            | dict.fromkeys(counted, 0),
        )
        for k in counted:
            out[k] += r.get(k) or 0
        out["fines_wan"] = round(out["fines_wan"] + _wan(r.get("fines_yuan")), 4)
    body = sorted(regions.values(), key=lambda x: x["region"] or "")
    for out in body:
        _rates(out)
    columns = [("region", "地区代码"), ("region_name", level_title), *_ENFORCEMENT]
    return Table("安全生产执法统计", columns, body, _totals_of(body, columns))


_ENFORCEMENT = [
    ("inspections", "检查生产经营单位家次"),
    ("general_hazards", "发现一般隐患数"),
    ("general_rectified", "一般隐患已整改数"),
    ("general_rectification_rate", "一般隐患整改率"),
    ("major_hazards", "发现重大隐患数"),
    ("major_rectified", "重大隐患已整改数"),
    ("major_rectification_rate", "重大隐患整改率"),
    ("cases", "立案数"),
    ("fines_wan", "罚款金额（万元）"),
    ("warnings", "警告次数"),
    ("shutdowns_ordered", "责令停产停业家数"),
    ("licences_suspended", "暂扣许可证数"),
    ("licences_revoked", "吊销许可证数"),
    ("closures", "关闭取缔家数"),
]


def _rates(out: dict[str, Any]) -> None:
    for kind in ("general", "major"):
        found = out.get(f"{kind}_hazards") or 0
        done = out.get(f"{kind}_rectified") or 0
        out[f"{kind}_rectification_rate"] = round(done / found, 4) if found else None


def _totals_of(body: list[dict[str, Any]], columns: list[tuple[str, str]]) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    for key, _t in columns:
        if key in ("region", "region_name", "industry", "industry_label"):
            continue
        if key.endswith("_rate"):
            continue
        totals[key] = _sum(body, key)
    if any(k.endswith("_rate") for k, _t in columns):
        _rates(totals)
    return totals


LEVEL_TITLES = {"county": "县级行政区", "city": "地级行政区", "province": "省级行政区"}
LAYOUTS: dict[str, tuple[str, Callable[[list[dict[str, Any]], str], Table]]] = {
    "region-grade": ("accident-stats", accident_by_region_and_grade),
    "industry": ("accident-stats", lambda rows, _level: accident_by_industry(rows)),
    "indicators": ("enforcement-stats", enforcement_indicators),
}


# -- files -------------------------------------------------------------------------------------
def csv_text(table: Table, titles: bool = True) -> str:
    """A table as CSV for a spreadsheet: UTF-8 with a byte-order mark (Chinese opens right in
    Excel), a header row even when there are no rows (Chinese titles, or the column keys for a
    program: ``titles=False``), 是/否 for flags, and text a spreadsheet would run as a formula
    (=, +, -, @) quoted with a leading apostrophe. Totals, when the table has them, end it."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([t if titles else k for k, t in table.columns])
    for row in table.rows:
        writer.writerow([_cell(row.get(k)) for k, _t in table.columns])
    if table.totals is not None:
        writer.writerow(
            [
                (table.totals_label if titles else "total")
                if i == 0
                else _cell(table.totals.get(k))
                for i, (k, _t) in enumerate(table.columns)
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and unicodedata.normalize("NFKC", value[:1]) in FORMULA_STARTS:
        return "'" + value  # also the full-width ＝ ＋ － ＠ a spreadsheet may read as ASCII
    return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def xlsx(tables: Sequence[Table], heading: str) -> bytes:
    """Tables as an XLSX workbook, a sheet each: a title row (the report, its region and
    period: ``heading``), the Chinese column titles, the rows, and a totals row (合计) where the
    table has totals. Written with XlsxWriter, in memory."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    bold = book.add_format({"bold": True})
    percent = book.add_format({"num_format": "0.00%"})
    bold_percent = book.add_format({"bold": True, "num_format": "0.00%"})
    title = book.add_format({"bold": True, "font_size": 14})
    for i, table in enumerate(tables):
        sheet = book.add_worksheet(_sheet_name(table.title, i))
        sheet.write_string(0, 0, f"{table.title}（{heading}）", title)
        for c, (_key, text) in enumerate(table.columns):
            sheet.write_string(1, c, text, bold)
            sheet.set_column(c, c, max(10, min(40, len(text) * 2 + 2)))
        r = 2
        for row in table.rows:
            for c, (key, _t) in enumerate(table.columns):
                _write(sheet, r, c, row.get(key), percent if key.endswith("_rate") else None)
            r += 1
        if table.totals is not None:
            sheet.write_string(r, 0, table.totals_label, bold)
            for c, (key, _t) in enumerate(table.columns[1:], start=1):
                if key in table.totals:
                    fmt = bold_percent if key.endswith("_rate") else bold
                    _write(sheet, r, c, table.totals[key], fmt)
        sheet.freeze_panes(2, 0)
    book.close()
    return buffer.getvalue()


def _sheet_name(title: str, i: int) -> str:
    clean = "".join(ch for ch in title if ch not in "[]:*?/\\")
    return f"{i + 1} {clean}"[:31]


def _write(sheet: Any, r: int, c: int, value: Any, fmt: Any = None) -> None:
    if value is None:
        sheet.write_blank(r, c, None, fmt)
    elif isinstance(value, bool):
        sheet.write_string(r, c, "是" if value else "否", fmt)
    elif isinstance(value, int | float):
        sheet.write_number(r, c, value, fmt)
    elif isinstance(value, dict | list):
        sheet.write_string(r, c, json.dumps(value, ensure_ascii=False), fmt)
    else:
        sheet.write_string(r, c, str(value), fmt)


def period(since: int | None, until: int | None) -> str:
    """The period of a report as a person writes it: 2026-01-01 至 2026-11-30 (the day before
    ``until``, which is exclusive), or 全部时间."""
    if since is None and until is None:
        return "全部时间"
    start = from_ms(since).astimezone(CHINA).date().isoformat() if since is not None else "…"
    end = (
        (from_ms(until).astimezone(CHINA) - timedelta(milliseconds=1)).date().isoformat()
        if until is not None
        else "…"
    )
    return f"{start} 至 {end}"
