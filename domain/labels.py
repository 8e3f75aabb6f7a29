"""The Chinese label of every code a register or a statistic shows, as a bureau writes it: the
grade 较大 beside ``larger``, the industry 煤矿 beside ``coal_mine``, the tier 县级 beside
``county``. Codes stay the machine's values; labels are what a person reads beside them."""

from __future__ import annotations

from domain import divisions
from domain.enforcement.commands import PenaltyType, Stage
from domain.finding import FindingKind
from domain.grading import Grade
from domain.industries import LABELS as INDUSTRIES
from domain.licence_rules import LicenceStatus

GRADES = {g.code: g.label for g in Grade}
TIERS = {
    "county": "县级",
    "city": "市级",
    "province": "省级",
    "national": "国家级",
    "backup": "备份中心",
}
STAGES = {
    Stage.INSPECTING: "检查中",
    Stage.RECTIFYING: "整改中",
    Stage.RECTIFIED: "整改合格",
    Stage.RECTIFICATION_FAILED: "整改不合格",
    Stage.FILED: "已立案",
    Stage.NOTIFIED: "已告知",
    Stage.DECIDED: "已决定",
    Stage.SERVED: "已送达",
    Stage.EXECUTED: "已执行",
    Stage.CLOSED: "已结案",
}
OUTCOMES = {
    "no_findings": "无问题",
    "rectified": "整改合格",
    "executed": "处罚执行完毕",
    "no_penalty": "不予处罚",
    "withdrawn": "撤销立案",
    "transferred": "移送",
}
PENALTIES = {
    PenaltyType.WARNING: "警告",
    PenaltyType.FINE: "罚款",
    PenaltyType.ORDER_CORRECTION: "责令改正",
    PenaltyType.CONFISCATION: "没收违法所得",
    PenaltyType.SUSPEND_PRODUCTION: "责令停产停业整顿",
    PenaltyType.SUSPEND_LICENCE: "暂扣许可证",
    PenaltyType.REVOKE_LICENCE: "吊销许可证",
    PenaltyType.CLOSURE: "关闭",
    PenaltyType.OTHER: "其他",
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
RECORD_KINDS = {
    "accident": "事故",
    "case": "执法案件",
    "enterprise": "企业",
    "licence": "许可证",
    "site": "站点",
    "investigation": "事故调查",
    "finding": "认定",
}
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

# the vocabulary of each kind of code
VOCABULARIES: dict[str, dict[str, str]] = {
    "grade": GRADES,
    "tier": TIERS,
    "industry": INDUSTRIES,
    "stage": {str(k): v for k, v in STAGES.items()},
    "outcome": OUTCOMES,
    "penalty": {str(k): v for k, v in PENALTIES.items()},
    "hazard": HAZARDS,
    "licence_status": LICENCE_STATUSES,
    "investigation": INVESTIGATION_STATES,
    "finding": FINDINGS,
    "subject": SUBJECTS,
    "receipt_status": RECEIPT_STATUSES,
    "excursion": EXCURSIONS,
    "exception": EXCEPTIONS,
    "record_kind": RECORD_KINDS,
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
    return VOCABULARIES[vocabulary].get(code, code)


def division_name(code: str) -> str | None:
    """The name of a division code (of the shipped GB/T 2260 table), None if unknown or not a
    division (``backup``, ``000000`` is the country)."""
    if code == "000000":
        return "全国"
    return divisions.name(code)
