"""The Chinese label of every code a register or a statistic shows, as a bureau writes it: the
grade 较大 beside ``larger``, the industry 煤矿 beside ``coal_mine``, the tier 县级 beside
``county``. Codes stay the machine's values; labels are what a person reads beside them."""

from __future__ import annotations

from typing import Any

from domain import divisions
from domain.base import KIND_LABELS
from domain.codes import TIER_LABELS
from domain.enforcement.commands import PENALTY_LABELS, STAGE_LABELS
from domain.finding import FindingKind
from domain.grading import Grade
from domain.i18n import ZH, gettext
from domain.industries import LABELS as INDUSTRIES
from domain.licence_rules import LicenceStatus

GRADES = {g.code: g.label for g in Grade}
OUTCOMES = {
    "no_findings": "无问题",
    "rectified": "整改合格",
    "executed": "处罚执行完毕",
    "no_penalty": "不予处罚",
    "withdrawn": "撤销立案",
    "transferred": "移送",
}
HAZARDS = {"general": "一般事故隐患", "major": "重大事故隐患"}
LICENCE_STATUSES = {s.value: s.label for s in LicenceStatus}
INVESTIGATION_STATES = {
    "none": "未立案调查",
    "opened": "调查中",
    "report_submitted": "已提交调查报告",
    "replied": "已批复",
    "closed": "已结案",
}
FINDINGS = {f.value: f.label for f in FindingKind}
SUBJECTS = {"unit": "事故发生单位", "bureau": "有关地方政府或部门"}
RECEIPT_STATUSES = {"on_time": "按时", "late": "迟报", "unknown": "无法判断"}
EXCURSIONS = {"alarm": "报警", "power_cut": "断电", "fan_cut": "风机停止", "fault": "故障"}
EXCEPTIONS = {"unregistered": "未登记企业", "mismatch": "信息不一致", "duplicate_code": "重复登记"}
FIELDS = {"name": "名称", "industry": "行业", "credit_code": "统一社会信用代码"}
SENSORS = {
    "methane": "甲烷",
    "co": "一氧化碳",
    "o2": "氧气",
    "co2": "二氧化碳",
    "air_speed": "风速",
    "temperature": "温度",
    "no2": "二氧化氮",
    "so2": "二氧化硫",
    "h2s": "硫化氢",
    "nh3": "氨气",
    "phreatic_line": "浸润线埋深",
    "pond_level": "库水位",
    "rainfall": "降水量",
    "displacement": "坝体位移",
}

# the vocabulary of each kind of code; those the messages use too are the catalogue's msgids
# (domain.codes.TIER_LABELS…), read here in Chinese
TRANSLATED = {"tier", "stage", "penalty", "record_kind"}
VOCABULARIES: dict[str, dict[str, str]] = {
    "grade": GRADES,
    "tier": TIER_LABELS,
    "industry": INDUSTRIES,
    "stage": STAGE_LABELS,
    "outcome": OUTCOMES,
    "penalty": PENALTY_LABELS,
    "hazard": HAZARDS,
    "licence_status": LICENCE_STATUSES,
    "investigation": INVESTIGATION_STATES,
    "finding": FINDINGS,
    "subject": SUBJECTS,
    "receipt_status": RECEIPT_STATUSES,
    "excursion": EXCURSIONS,
    "exception": EXCEPTIONS,
    "record_kind": KIND_LABELS,
    "field": FIELDS,
    "sensor": SENSORS,
}


def label(vocabulary: str, code: str | None) -> str | None:
    """The Chinese label of ``code``; a division's name for ``division``; None for no code,
    the code itself for one the vocabulary does not know (a newer node's)."""
    if code is None or code == "":
        return None
    if vocabulary == "division":
        return division_name(code)
    text = VOCABULARIES[vocabulary].get(code)
    if text is None:
        return code
    return gettext(text, ZH) if vocabulary in TRANSLATED else text


def division_name(code: str) -> str | None:
    """The name of a division code (of the shipped GB/T 2260 table), None if unknown or not a
    division (``backup``, ``000000`` is the country)."""
    if code == "000000":
        return "全国"
    return divisions.name(code)


# the code fields of a record and their vocabularies: a record shows each with its label
RECORD_FIELDS = {
    "industry": "industry",
    "division": "division",
    "tier": "tier",
    "assigned_tier": "tier",
    "must_reach_tier": "tier",
    "stage": "stage",
    "outcome": "outcome",
    "status": None,  # a licence's; other records' statuses are their own words
    "finding": "finding",
    "subject": "subject",
    "origin": "division",
    "investigated_by_tier": "tier",
    "investigated_by_region": "division",
    "must_reach_region": "division",
    "sensor_type": "sensor",
    "class": "hazard",  # a hazard's, in a case's hazards
    "type": "penalty",  # a penalty's, in a case's penalties
}
NESTED = ("hazards", "penalties", "points")  # lists (or maps) of items labelled the same way
PARTS = ("notice", "decision")  # parts of a record labelled the same way


def labelled(view: dict[str, Any]) -> dict[str, Any]:
    """A record as a person reads it: each code field followed by its label
    (``industry_label``, ``division_name``…), where the record does not already have one."""
    out: dict[str, Any] = {}
    for key, value in view.items():
        if key in NESTED and isinstance(value, list):
            value = [labelled(v) if isinstance(v, dict) else v for v in value]
        elif key in NESTED and isinstance(value, dict):
            value = {k: labelled(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif key in PARTS and isinstance(value, dict):  # a case's notice and decision
            value = labelled(value)
        out[key] = value
        vocabulary = RECORD_FIELDS.get(key, "")
        if key == "subject" and view.get("kind") != "finding":
            continue  # an inspection's subject is its own words
        if vocabulary == "" or not isinstance(value, str):
            continue
        if vocabulary is None:
            vocabulary = "licence_status" if view.get("kind") == "licence" else ""
            if not vocabulary:
                continue
        suffix = "_name" if vocabulary == "division" else "_label"
        if key + suffix not in view:
            out[key + suffix] = label(vocabulary, value)
    return out
