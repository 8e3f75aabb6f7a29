"""Named queries over the projections, with filters and paging. Clock-relative lists
("overdue", "expiring within 90 days", "without a valid licence") are computed here, against an
explicit ``as_of``, so the stored tables (and their digest) never depend on when they were read.

A register is read in its order through an index that holds it (projections.base.in_order), so
a page reads its own rows: a region filter compares the division's code prefix
(``substr(division, 1, 4) = '1301'``), which the indexes hold, and ``after`` continues from the
last row of a page (keyset paging: no rows are skipped over, however deep). The statistics sum
the cells the projections keep (projections.cells) when the period is whole months in China
time or open; another period is counted from its records, read through an index on the time."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlite_utils

from domain import divisions
from domain.base import CHINA, from_ms, to_ms
from domain.enforcement.commands import Stage
from domain.finding import FindingKind
from domain.grading import Grade
from domain.i18n import Text, _
from domain.industries import AccidentIndustry, Industry
from domain.labels import EXCEPTIONS, RECEIPT_STATUSES
from domain.licence_rules import LicenceStatus
from projections.base import LAST, nulls_last
from projections.cells import LATE_ONWARD, REQUIRED, has_finding
from projections.errors import BadFilter

DAY_MS = 86_400_000
MAX_MS = 2**53  # times and offsets beyond this are mistakes, not dates
LICENSED_INDUSTRIES = (
    "coal_mine",
    "non_coal_mine",
    "hazardous_chemicals",
    "fireworks",
    "construction",
)


def moment(value: str | None) -> int | None:
    """A filter time: ISO 8601 (a bare date or time is China time; 20260101 is a date), or
    milliseconds since 1970 for a program. BadFilter (a ValueError) says what is wrong."""
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit() and len(value) != 8:  # 20260101 is a date (ISO 8601 basic)
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadFilter(_("{value!r} is not an ISO 8601 date or time", value=value)) from None
    return to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA))


# the values a filter on a code may take (the command line lists them; both edges check them)
GRADES = tuple(g.code for g in Grade)
INDUSTRIES = tuple(sorted({i.value for i in Industry} | {i.value for i in AccidentIndustry}))
STATUSES = tuple(
    sorted(
        {s.value for s in LicenceStatus}
        | {s.value for s in Stage}
        | {f.value for f in FindingKind}
        | set(EXCEPTIONS)
        | set(RECEIPT_STATUSES)
    )
)


@dataclass(frozen=True)
class Filters:
    region: str | None = None  # division-code prefix area (a county, city or province code)
    since: int | None = None  # ms, inclusive
    until: int | None = None  # ms, exclusive
    grade: str | None = None
    industry: str | None = None
    status: str | None = None
    accident: str | None = None  # an accident record's id (accident-receipts, accident-findings)
    record: str | None = None  # a record's id (exceptions: the flags of one accident or case)
    level: str = "county"  # statistics: county | city | province
    as_of: int = 0
    limit: int = 100
    offset: int = 0
    after: str | None = None  # a register's rows after this cursor (``cursor``: a page's last)

    @classmethod
    def parse(cls, params: Mapping[str, str | None], now: int) -> Filters:
        """Filters from text, as the command line and the HTTP API receive them (keys as the
        fields are named; times as ``moment`` reads them; ``as_of`` defaults to ``now``).
        BadFilter (a ValueError) names the parameter and what was wrong with it."""

        def bad(name: str, problem: str | Text) -> BadFilter:
            message = _("{parameter}: {problem}", parameter=name, problem=problem)
            return BadFilter(message, parameter=name, problem=problem)

        def time(name: str) -> int | None:
            try:
                return moment(params.get(name))
            except BadFilter as e:
                raise bad(name, e.problem) from None
            except ValueError as e:
                raise bad(name, str(e)) from None

        def number(name: str, default: int) -> int:
            value = params.get(name)
            if value is None or value == "":
                return default
            try:
                return int(value)
            except ValueError:
                raise bad(name, _("{value!r} is not a whole number", value=value)) from None

        return cls(
            region=params.get("region") or None,
            since=time("since"),
            until=time("until"),
            grade=params.get("grade") or None,
            industry=params.get("industry") or None,
            status=params.get("status") or None,
            level=params.get("level") or "county",
            as_of=now if (as_of := time("as_of")) is None else as_of,
            accident=params.get("accident") or None,
            record=params.get("record") or None,
            limit=number("limit", 100),
            offset=number("offset", 0),
            after=params.get("after") or None,
        )

    def __post_init__(self) -> None:
        """Refuse what no query can mean, with what was wrong (BadFilter)."""
        if self.region is not None and not (len(self.region) == 6 and self.region.isdigit()):
            raise BadFilter(
                _("region {value!r} is not a 6-digit division code", value=self.region),
                parameter="region",
            )
        if self.region is not None and self.region != "000000" and not divisions.known(self.region):
            raise BadFilter(
                _("region {value!r} is not a division code (GB/T 2260)", value=self.region),
                parameter="region",
            )
        for name, known in (("grade", GRADES), ("industry", INDUSTRIES), ("status", STATUSES)):
            value = getattr(self, name)
            if value is not None and value not in known:
                raise BadFilter(
                    _(
                        "{name} {value!r} is not one of {known}",
                        name=name,
                        value=value,
                        known=", ".join(known),
                    ),
                    parameter=name,
                )
        for name in ("accident", "record"):
            value = getattr(self, name)
            if value is not None:
                try:
                    UUID(value)
                except ValueError:
                    raise BadFilter(
                        _("{name} {value!r} is not a record id (a UUID)", name=name, value=value),
                        parameter=name,
                    ) from None
        if self.level not in ("county", "city", "province"):
            raise BadFilter(
                _("level {value!r} is not county, city or province", value=self.level),
                parameter="level",
            )
        for name in ("since", "until", "as_of"):
            value = getattr(self, name)
            if value is not None and not -MAX_MS <= value <= MAX_MS:
                raise BadFilter(
                    _(
                        "{name} {value} is out of range (milliseconds since 1970)",
                        name=name,
                        value=value,
                    ),
                    parameter=name,
                )
        if not 1 <= self.limit <= 100_000 or not 0 <= self.offset <= MAX_MS:
            raise BadFilter(
                _("limit is 1 to 100000 and offset is not negative"),
                parameter="limit" if not 1 <= self.limit <= 100_000 else "offset",
            )
        if self.after is not None:
            _values(self.after)  # BadFilter unless one of ours


@dataclass(frozen=True)
class Key:
    """A term of a register's order: its SQL, how it sorts (SQLite puts NULL first ascending,
    last descending), and the row's column that gives its value (by default the one the SQL
    names). ``nulls=False``: never NULL in the register's rows, which lets a descending first
    term bound the index walk. ``missing``: the term's value where the column is NULL."""

    sql: str
    desc: bool = False
    nulls: bool = True
    column: str = ""
    missing: Any = None

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", self.sql.rsplit(".", 1)[-1])

    def value(self, row: Mapping[str, Any]) -> Any:
        value = row[self.column]
        return self.missing if value is None else value

    def __str__(self) -> str:
        return f"{self.sql} DESC" if self.desc else self.sql


def last(column: str) -> Key:
    """A column ascending, the rows without a value after all others (as the index holds it:
    projections.base.nulls_last)."""
    return Key(nulls_last(column), nulls=False, column=column.rsplit(".", 1)[-1], missing=LAST)


@dataclass(frozen=True)
class Query:
    summary: str
    sql: str  # with {where} and the named parameters below (a register without its ORDER BY)
    time_column: str | None
    region_column: str = "division"
    grade_column: str | None = None
    industry_column: str | None = "industry"
    status_column: str | None = None
    grouped: bool = False
    accident_column: str | None = None
    record_column: str | None = None
    order: tuple[Key, ...] = ()  # a register's order
    keyset: bool = True  # its order is unique (ends with an id), so ``after`` may page it
    # statistics: the same over the cells (as ``cell``; the filters' columns are theirs too)
    cells: str | None = None


# Cross-record checks (未登记企业, 信息不一致, 重复登记): joins of the records with the enterprise
# register as it stands, so a flag clears when the register catches up. A record refers to the
# enterprise registered in its own division (domain.codes.enterprise_id); an accident's industry
# is compared only when it is an enterprise industry (road_traffic, fire... name the accident,
# not the enterprise); an inspection carries no industry. Each kind's rows have the same columns.
_ENTERPRISE_INDUSTRIES = ", ".join(f"'{i.value}'" for i in Industry)
_ELSEWHERE = (
    "(SELECT group_concat(d.division, ',') FROM (SELECT DISTINCT o.division FROM enterprises o"
    " WHERE o.credit_code = {code} AND o.voided = 0 ORDER BY o.division) d)"
)


def _unregistered(kind: str, t: str, time: str) -> str:
    return (
        f"SELECT 'unregistered' AS kind, '未登记企业' AS label, '{kind}' AS record_kind,"
        f" {t}.id AS record_id, {t}.origin, {t}.enterprise_credit_code AS credit_code,"
        f" {t}.division, {time} AS at, NULL AS field, {t}.enterprise_name AS recorded_value,"
        " NULL AS registered_value, NULL AS enterprise_id,"
        f" {_ELSEWHERE.format(code=f'{t}.enterprise_credit_code')} AS registered_in"
        f" FROM {'accidents' if kind == 'accident' else 'cases'} {t} WHERE {t}.voided = 0"
        f" AND NOT EXISTS (SELECT 1 FROM enterprises e WHERE e.id = {t}.enterprise_id"
        " AND e.voided = 0)"
    )


def _mismatch(kind: str, t: str, time: str, field: str, mine: str, theirs: str, differ: str) -> str:
    return (
        f"SELECT 'mismatch', '信息不一致', '{kind}', {t}.id, {t}.origin,"
        f" {t}.enterprise_credit_code, {t}.division, {time}, '{field}', {mine}, {theirs}, e.id,"
        f" e.division FROM {'accidents' if kind == 'accident' else 'cases'} {t}"
        f" JOIN enterprises e ON e.id = {t}.enterprise_id AND e.voided = 0"
        f" WHERE {t}.voided = 0 AND {differ}"
    )


_EXCEPTIONS = " UNION ALL ".join(
    (
        _unregistered("accident", "a", "a.occurred_at"),
        _mismatch(
            "accident",
            "a",
            "a.occurred_at",
            "name",
            "a.enterprise_name",
            "e.name",
            "a.enterprise_name_key IS NOT e.name_key",
        ),
        _mismatch(
            "accident",
            "a",
            "a.occurred_at",
            "industry",
            "a.industry",
            "e.industry",
            f"a.industry IN ({_ENTERPRISE_INDUSTRIES}) AND a.industry IS NOT e.industry",
        ),
        _unregistered("case", "c", "c.started_at"),
        _mismatch(
            "case",
            "c",
            "c.started_at",
            "name",
            "c.enterprise_name",
            "e.name",
            "c.enterprise_name_key IS NOT e.name_key",
        ),
        "SELECT 'duplicate_code', '重复登记', 'enterprise', e.id, e.origin, e.credit_code,"
        " e.division, NULL, 'credit_code', e.name, NULL, e.id,"
        f" {_ELSEWHERE.format(code='e.credit_code')} FROM enterprises e WHERE e.voided = 0"
        " AND e.credit_code IN (SELECT d.credit_code FROM enterprises d WHERE d.voided = 0"
        " GROUP BY d.credit_code HAVING COUNT(*) > 1)",
    )
)


QUERIES: dict[str, Query] = {
    "accidents": Query(
        "The accident register, with the state of each accident's investigation (the highest"
        " tier's when several bureaus investigate).",
        "SELECT a.*, COALESCE((SELECT i.state FROM investigations i"
        " WHERE i.accident_id = a.id AND i.voided = 0 ORDER BY CASE i.tier"
        " WHEN 'national' THEN 0 WHEN 'province' THEN 1 WHEN 'city' THEN 2 ELSE 3 END, i.id"
        " LIMIT 1), 'none') AS investigation FROM accidents a {where}",
        "a.occurred_at",
        "a.division",
        "a.grade",
        "a.industry",
        # occurred_at: never NULL, an accident without it is not in the register
        order=(Key("a.occurred_at", desc=True, nulls=False), Key("a.id")),
    ),
    "accident-stats": Query(
        "Accidents by grade × region (at the chosen level) × industry × month, with the"
        " accidents reported late by the unit (迟报, 1 hour: late_unit) or by a bureau passing"
        " the report on (迟报, 2 hours per tier up to the tier the grade must reach:"
        " late_onward), and those with a finding of 漏报 (omitted), 谎报 (falsified) or 瞒报"
        " (concealed).",
        "SELECT a.grade, a.{level} AS region, a.industry, a.month, COUNT(*) AS accidents,"
        " SUM(a.deaths) AS deaths, SUM(a.missing) AS missing,"
        " SUM(a.serious_injuries) AS serious_injuries, SUM(a.direct_loss_yuan) AS direct_loss_yuan,"
        " SUM(a.late_report) AS late_unit,"
        f" SUM({LATE_ONWARD}) AS late_onward,"
        f" SUM({has_finding('omitted')}) AS omitted,"
        f" SUM({has_finding('falsified')}) AS falsified,"
        f" SUM({has_finding('concealed')}) AS concealed"
        " FROM accidents a {where} AND a.voided = 0"
        " GROUP BY a.grade, a.{level}, a.industry, a.month"
        " ORDER BY a.month, region, a.grade, a.industry",
        "a.occurred_at",
        "a.division",
        "a.grade",
        "a.industry",
        grouped=True,
        cells="SELECT cell.grade, cell.{level} AS region, cell.industry, cell.month,"
        " SUM(cell.accidents) AS accidents, SUM(cell.deaths) AS deaths,"
        " SUM(cell.missing) AS missing,"
        " SUM(cell.serious_injuries) AS serious_injuries,"
        " SUM(cell.direct_loss_yuan) AS direct_loss_yuan, SUM(cell.late_report) AS late_unit,"
        " SUM(cell.late_onward) AS late_onward, SUM(cell.omitted) AS omitted,"
        " SUM(cell.falsified) AS falsified, SUM(cell.concealed) AS concealed"
        " FROM accident_cells cell {where}"
        " GROUP BY cell.grade, cell.{level}, cell.industry, cell.month"
        " ORDER BY cell.month, region, cell.grade, cell.industry",
    ),
    "accident-receipts": Query(
        "Per accident and tier, when the report arrived against its deadline (493号令 Art. 11:"
        " each tier passes it on within 2 hours of receiving it; due_from names the tier whose"
        " receipt, or the report, starts the clock); status on_time, late or unknown. required:"
        " the tier is one the report must reach (Art. 10, along the division's chain). The"
        " accident's place and grade come from the register when its report is held here;"
        " without it the region is the reporting origin's.",
        "SELECT r.accident_id, r.tier, r.origin, r.region, r.reporting_origin, r.reporting_seq,"
        " r.reporting_tier, r.tiers_above, r.report_recorded_at, r.received_at, r.due_from,"
        " r.due_from_at, r.deadline, r.on_time, r.minutes_late,"
        " a.id IS NOT NULL AS report_held, a.division, a.grade, a.must_reach_tier,"
        f" a.must_reach_region, {REQUIRED} AS required, a.occurred_at, a.enterprise_name,"
        " a.voided FROM accident_receipts r LEFT JOIN accidents a ON a.id = r.accident_id"
        " {where}",
        "r.report_recorded_at",
        "COALESCE(a.division, r.reporting_origin)",
        "+a.grade",  # unary +: not by the accidents' grade index, the receipts stay in order
        "+a.industry",
        "CASE r.on_time WHEN 1 THEN 'on_time' WHEN 0 THEN 'late' ELSE 'unknown' END",
        accident_column="r.accident_id",
        order=(
            Key("r.report_recorded_at"),
            Key("r.accident_id"),
            last("r.tiers_above"),
            Key("r.origin"),
        ),
    ),
    "accident-findings": Query(
        "Findings of 漏报 (omitted), 谎报 (falsified) and 瞒报 (concealed), with the bureau that"
        " made them, their basis, and the accident (its place and time from the register when"
        " its report is held here). Voided findings are left out.",
        "SELECT f.id, f.accident_id, f.finding, CASE f.finding WHEN 'omitted' THEN '漏报'"
        " WHEN 'falsified' THEN '谎报' WHEN 'concealed' THEN '瞒报' END AS label, f.subject,"
        " f.bureau, f.basis, f.origin, f.tier, f.region, f.recorded_at,"
        " COALESCE(a.division, f.division) AS division,"
        " COALESCE(a.occurred_at, f.occurred_at) AS occurred_at, a.grade, a.enterprise_name,"
        " a.enterprise_credit_code FROM accident_findings f"
        " LEFT JOIN accidents a ON a.id = f.accident_id {where} AND f.voided = 0",
        "COALESCE(a.occurred_at, f.occurred_at)",
        "COALESCE(a.division, f.division)",
        "+a.grade",  # as in accident-receipts: the findings stay in order
        "+a.industry",
        "f.finding",
        accident_column="f.accident_id",
        order=(Key("f.recorded_at"), Key("f.id")),
    ),
    "exceptions": Query(
        "Cross-record checks, one row per flag (kind): unregistered (未登记企业: an accident or"
        " case whose credit code this register does not hold in its division; registered_in"
        " lists the divisions that hold it), mismatch (信息不一致: the name or industry differs"
        " from the register's; field, recorded_value, registered_value), duplicate_code"
        " (重复登记: one credit code registered by more than one node; code_division is the"
        " registration authority's division within the code). Computed from the registers,"
        " so a flag clears when the register catches up.",
        "SELECT x.*, substr(x.credit_code, 3, 6) AS code_division FROM (" + _EXCEPTIONS + ") x"
        " {where}",
        None,
        "x.division",
        None,
        None,
        "x.kind",
        record_column="x.record_id",
        order=tuple(
            Key(f"x.{c}")
            for c in ("kind", "credit_code", "division", "record_kind", "record_id", "field")
        ),
    ),
    "enforcement-stats": Query(
        "执法统计 by region (at the chosen level) and month.",
        "SELECT c.{level} AS region, c.month, COUNT(*) AS inspections,"
        " SUM(c.hazards_general) AS general_hazards, SUM(c.rectified_general) AS general_rectified,"
        " ROUND(1.0 * SUM(c.rectified_general) / NULLIF(SUM(c.hazards_general), 0), 4)"
        " AS general_rectification_rate,"
        " SUM(c.hazards_major) AS major_hazards, SUM(c.rectified_major) AS major_rectified,"
        " ROUND(1.0 * SUM(c.rectified_major) / NULLIF(SUM(c.hazards_major), 0), 4)"
        " AS major_rectification_rate,"
        " SUM(c.filed) AS cases, SUM(c.fines_yuan) AS fines_yuan, SUM(c.warnings) AS warnings,"
        " SUM(c.shutdown) AS shutdowns_ordered, SUM(c.licence_suspensions) AS licences_suspended,"
        " SUM(c.licence_revocations) AS licences_revoked,"
        " SUM(c.suspensions_recommended) AS licence_suspensions_recommended,"
        " SUM(c.revocations_recommended) AS licence_revocations_recommended,"
        " SUM(c.closure) AS closures"
        " FROM cases c {where} AND c.voided = 0"
        " GROUP BY c.{level}, c.month ORDER BY c.month, region",
        "c.started_at",
        "c.division",
        None,
        None,
        grouped=True,
        cells="SELECT cell.{level} AS region, cell.month, SUM(cell.inspections) AS inspections,"
        " SUM(cell.hazards_general) AS general_hazards,"
        " SUM(cell.rectified_general) AS general_rectified,"
        " ROUND(1.0 * SUM(cell.rectified_general) / NULLIF(SUM(cell.hazards_general), 0), 4)"
        " AS general_rectification_rate,"
        " SUM(cell.hazards_major) AS major_hazards, SUM(cell.rectified_major) AS major_rectified,"
        " ROUND(1.0 * SUM(cell.rectified_major) / NULLIF(SUM(cell.hazards_major), 0), 4)"
        " AS major_rectification_rate,"
        " SUM(cell.filed) AS cases, SUM(cell.fines_yuan) AS fines_yuan,"
        " SUM(cell.warnings) AS warnings, SUM(cell.shutdown) AS shutdowns_ordered,"
        " SUM(cell.licence_suspensions) AS licences_suspended,"
        " SUM(cell.licence_revocations) AS licences_revoked,"
        " SUM(cell.suspensions_recommended) AS licence_suspensions_recommended,"
        " SUM(cell.revocations_recommended) AS licence_revocations_recommended,"
        " SUM(cell.closure) AS closures"
        " FROM enforcement_cells cell {where}"
        " GROUP BY cell.{level}, cell.month ORDER BY cell.month, region",
    ),
    "open-cases": Query(
        "Open cases with their rectification deadlines; overdue as of as_of.",
        "SELECT c.id, c.origin, c.enterprise_name, c.division, c.stage, c.order_deadline,"
        " c.hazards_general - c.rectified_general + c.hazards_major - c.rectified_major"
        " AS open_hazards, (c.order_deadline IS NOT NULL AND c.order_deadline < :as_of"
        " AND c.stage = 'rectifying') AS overdue FROM cases c {where}"
        " AND c.closed = 0 AND c.voided = 0",
        "c.started_at",
        "c.division",
        None,
        None,
        "c.stage",
        order=(last("c.order_deadline"), Key("c.id")),
    ),
    "licences": Query(
        "The licence register; expiring (within 90 days) and expired as of as_of.",
        "SELECT l.*, (l.status = 'issued' AND l.valid_until > :as_of"
        " AND l.valid_until <= :as_of + 90 * 86400000) AS expiring_within_90_days,"
        " (l.valid_until IS NOT NULL AND l.valid_until <= :as_of) AS past_validity"
        " FROM licences l {where} AND l.voided = 0",
        "l.applied_at",
        "l.division",
        None,
        "l.industry",
        "l.status",
        order=(last("l.valid_until"), Key("l.id")),
    ),
    "unlicensed": Query(
        "Open enterprises whose industry needs a licence and that hold no valid one as of"
        " as_of, with their latest licence (expired, suspended, revoked...) if any.",
        "SELECT e.id, e.name, e.credit_code, e.industry, e.division, l.id AS licence_id,"
        " l.number, l.status, l.valid_until FROM enterprises e"
        " LEFT JOIN licences l ON l.id = (SELECT k.id FROM licences k WHERE k.enterprise_id = e.id"
        " AND k.voided = 0 AND k.applied_at <= :as_of ORDER BY k.applied_at DESC, k.id DESC"
        " LIMIT 1) {where} AND e.closed = 0 AND e.voided = 0 AND e.industry IN ("
        + ", ".join(f"'{i}'" for i in LICENSED_INDUSTRIES)
        + ") AND NOT EXISTS (SELECT 1 FROM licences v WHERE v.enterprise_id = e.id"
        " AND v.voided = 0 AND v.status = 'issued' AND v.valid_from <= :as_of"
        " AND v.valid_until > :as_of)",
        None,
        "e.division",
        None,
        "e.industry",
        order=(Key("e.division"), Key("e.id")),
    ),
    "duplicate_codes": Query(
        "Exceptions: one credit code registered as an enterprise by more than one node. Ids are"
        " scoped to the registering node, so each stays a record of its own; code_division is"
        " the registration authority's division within the code (GB 32100), which tells the"
        " node where the enterprise is registered from one that registered it by mistake (or"
        " to take it).",
        "SELECT e.credit_code, substr(e.credit_code, 3, 6) AS code_division, e.id, e.name,"
        " e.division, e.industry FROM enterprises e {where} AND e.voided = 0 AND e.credit_code"
        " IN (SELECT d.credit_code FROM enterprises d WHERE d.voided = 0 GROUP BY d.credit_code"
        " HAVING COUNT(*) > 1)",
        None,
        "e.division",
        None,
        "e.industry",
        order=(Key("e.credit_code"), Key("e.division"), Key("e.id")),
    ),
    "points": Query(
        "Monitoring points with their latest 5-minute summary.",
        "SELECT s.site_code, s.division, p.point, p.sensor_type, p.location, p.unit, p.scale,"
        " p.retired, p.latest_window, p.latest_count, p.latest_min, p.latest_mean, p.latest_max"
        " FROM points p JOIN sites s ON s.id = p.site_id {where}",
        None,
        "s.division",
        None,
        None,
        order=(Key("s.site_code"), Key("p.point")),
        keyset=False,  # site codes may repeat across origins
    ),
    "alarms": Query(
        "Alarms, power cuts, fan cuts and sensor faults in force (not yet ended; kind: alarm,"
        " power_cut, fan_cut, fault), at points in service.",
        "SELECT s.site_code, s.division, x.point, x.kind, x.started_at, x.start_value, x.threshold"
        " FROM excursions x JOIN sites s ON s.id = x.site_id"
        " JOIN points p ON p.key = x.site_id || ':' || x.point {where} AND x.ended_at IS NULL"
        " AND s.voided = 0 AND p.retired = 0",
        "x.started_at",
        "s.division",
        None,
        None,
        order=(Key("x.started_at"), Key("s.site_code"), Key("x.point")),
        keyset=False,  # site codes may repeat across origins
    ),
    "excursions": Query(
        "Alarm, power-cut, fan-cut and sensor-fault history with durations.",
        "SELECT s.site_code, s.division, x.point, x.kind, x.started_at, x.ended_at, x.duration_ms,"
        " x.start_value, x.end_value FROM excursions x JOIN sites s ON s.id = x.site_id {where}",
        "x.started_at",
        "s.division",
        None,
        None,
        order=(Key("x.started_at"), Key("s.site_code"), Key("x.point")),
        keyset=False,  # site codes may repeat across origins
    ),
    "summaries": Query(
        "5-minute summaries per site.",
        "SELECT s.site_code, s.division, m.window_start, m.window_end, m.reading_count,"
        " m.raw_sha256, m.points FROM summaries m JOIN sites s ON s.id = m.site_id {where}",
        "m.window_start",
        "s.division",
        None,
        None,
        order=(Key("m.window_start"), Key("s.site_code")),
        keyset=False,  # site codes may repeat across origins
    ),
    "origins": Query(
        "Per origin: events held, last recording time, events of unknown types.",
        "SELECT o.* FROM origins o {where}",
        "o.last_at",
        "o.origin",
        None,
        None,
        order=(Key("o.origin"),),
    ),
}


# the values ``status`` takes in each query that has it
STATUS_VALUES: dict[str, tuple[str, ...]] = {
    "licences": tuple(s.value for s in LicenceStatus),
    "open-cases": tuple(s.value for s in Stage),
    "accident-receipts": tuple(RECEIPT_STATUSES),
    "accident-findings": tuple(f.value for f in FindingKind),
    "exceptions": tuple(EXCEPTIONS),
}


def check_applies(name: str, f: Filters) -> None:
    """Refuse a filter the query does not have, or a status it does not know (BadFilter naming
    it): a filter passed over would answer a question no one asked."""
    q = QUERIES[name]
    for parameter, value, column in (
        ("grade", f.grade, q.grade_column),
        ("industry", f.industry, q.industry_column),
        ("status", f.status, q.status_column),
        ("accident", f.accident, q.accident_column),
        ("record", f.record, q.record_column),
        ("since", f.since, q.time_column),
        ("until", f.until, q.time_column),
    ):
        if value is not None and column is None:
            raise BadFilter(
                _("{query} cannot be filtered by {name}", query=name, name=parameter),
                parameter=parameter,
            )
    if f.after is not None:
        _keyset(name, f.after)
    known = STATUS_VALUES.get(name)
    if f.status is not None and known is not None and f.status not in known:
        raise BadFilter(
            _(
                "status of {query} is one of {known}, not {value!r}",
                query=name,
                known=", ".join(known),
                value=f.status,
            ),
            parameter="status",
        )


def run(
    db: sqlite_utils.Database, name: str, f: Filters, from_rows: bool = False
) -> list[dict[str, Any]]:
    sql, params = statement(name, f, from_rows)
    return [dict(r) for r in db.query(sql, params)]


def columns_of(db: sqlite_utils.Database, name: str, f: Filters) -> list[str]:
    """The columns the query gives, rows or none (a CSV's header when nothing matched)."""
    sql, params = statement(name, f)
    cursor = db.execute(f"SELECT * FROM ({sql}) LIMIT 0", params)
    return [d[0] for d in cursor.description]


def statement(name: str, f: Filters, from_rows: bool = False) -> tuple[str, dict[str, Any]]:
    """The SQL of a query with its filters, and its parameters. ``from_rows``: statistics
    counted from the records even where the cells would answer (what the cells must equal)."""
    q = QUERIES[name]
    clauses: list[str] = ["1 = 1"]
    params: dict[str, Any] = {"as_of": f.as_of}
    months = _months(f) if q.cells is not None and not from_rows else None

    def on(column: str) -> str:  # a record's column, or the cell's of that name
        return column if months is None else re.sub(r"^\w+\.", "cell.", column)

    if f.region and f.region != "000000":
        prefix, place = region_prefix(f.region), on(q.region_column)
        if q.grouped:  # the division's codes from the prefix up to the next one
            clauses.append(f"{place} >= :region AND {place} < :region_end")
            params["region_end"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        else:  # an equality, which the register's indexes hold in its order
            clauses.append(f"substr({place}, 1, {len(prefix)}) = :region")
        params["region"] = prefix
    if months is not None:
        for bound, op, value in (("since", ">=", months[0]), ("until", "<", months[1])):
            if value is not None:
                clauses.append(f"cell.month {op} :{bound}")
                params[bound] = value
    else:
        if q.time_column and f.since is not None:
            clauses.append(f"{q.time_column} >= :since")
            params["since"] = f.since
        if q.time_column and f.until is not None:
            clauses.append(f"{q.time_column} < :until")
            params["until"] = f.until
    order = q.order
    if f.after is not None:
        clause, values, fixed = _after(q.order, _keyset(name, f.after))
        clauses.append(clause)
        params.update(values)
        # terms the cursor fixes order nothing: left out, as SQLite does not see that an
        # expression an index holds is in order where an equality fixes it
        order = order[fixed:]
    for value, column, key in (
        (f.accident and str(UUID(f.accident)), q.accident_column, "accident"),
        (f.record and str(UUID(f.record)), q.record_column, "record"),
        (f.grade, q.grade_column, "grade"),
        (f.industry, q.industry_column, "industry"),
        (f.status, q.status_column, "status"),
    ):
        if value is not None and column is not None:
            clauses.append(f"{on(column)} = :{key}")
            params[key] = value
    sql = q.sql if months is None else q.cells
    assert sql is not None
    sql = sql.format(where="WHERE " + " AND ".join(clauses), level=f.level)
    if order:
        sql += " ORDER BY " + ", ".join(map(str, order))
    sql += " LIMIT :limit OFFSET :offset"
    params.update(limit=f.limit, offset=f.offset)
    return sql, params


def _months(f: Filters) -> tuple[str | None, str | None] | None:
    """The months a statistics period covers when it is whole months in China time (or open
    at either end), as the cells count them: since's month, until's month (exclusive). None
    when it is not: that period is counted from its records."""
    found: list[str | None] = []
    for ms in (f.since, f.until):
        if ms is None:
            found.append(None)
            continue
        try:
            start = from_ms(ms).astimezone(CHINA)
        except (OverflowError, ValueError):
            return None
        if not 1000 <= start.year <= 9999 or start != start.replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        ):
            return None
        found.append(start.strftime("%Y-%m"))
    return found[0], found[1]


def cursor(name: str, row: Mapping[str, Any]) -> str:
    """The ``after`` that continues a register from this row (a page's last, as ``run`` gave
    it): its values of the query's order, opaque to the reader."""
    values = [key.value(row) for key in QUERIES[name].order]
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def next_page(name: str, f: Filters, rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The ``after`` of the page that follows these rows (``run``'s, not as presented): None
    when the page was not full (the last one) or the query is not paged by ``after``."""
    q = QUERIES[name]
    if not q.order or not q.keyset or not rows or len(rows) < f.limit:
        return None
    return cursor(name, rows[-1])


def _values(after: str) -> list[Any]:
    """The values a cursor holds; BadFilter when it is not one ``cursor`` made."""
    try:
        text = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
        values = json.loads(text)
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list) or not all(
        v is None or type(v) in (int, float, str) for v in values
    ):
        raise BadFilter(
            _("after {value!r} is not a cursor a page gave", value=after), parameter="after"
        )
    return values


def _keyset(name: str, after: str) -> list[Any]:
    q = QUERIES[name]
    if not q.order or not q.keyset:
        raise BadFilter(
            _("{query} cannot be paged by after: use offset", query=name), parameter="after"
        )
    values = _values(after)
    if len(values) != len(q.order):
        raise BadFilter(
            _("after {value!r} is not a cursor of {query}", value=after, query=name),
            parameter="after",
        )
    return values


def _after(
    order: Sequence[Key], values: Sequence[Any], start: int = 0
) -> tuple[str, dict[str, Any], int]:
    """The rows that come after the cursor's in the order: for some term, every term before it
    equal (NULL-safe) and this one after; with how many leading terms that fixes. The first
    term also bounds the index walk; where the cursor's row is in the term's last group (no
    expiry, NULL descending), the rows after are that group's later ones, so the term is fixed
    and the walk starts at the cursor's row."""
    if not order:
        return "0", {}, 0
    first, value = order[0], values[0]
    if (first.missing is not None and value == first.missing) or (value is None and first.desc):
        rest, params, fixed = _after(order[1:], values[1:], start + 1)
        params[f"after{start}"] = value
        return f"{first.sql} IS :after{start} AND {rest}", params, fixed + 1
    params = {f"after{start + i}": v for i, v in enumerate(values)}
    terms = []
    for i, key in enumerate(order):
        mark = f":after{start + i}"
        if values[i] is None:
            later = "0" if key.desc else f"{key.sql} IS NOT NULL"
        elif key.desc:
            later = f"({key.sql} < {mark}{f' OR {key.sql} IS NULL' if key.nulls else ''})"
        else:
            later = f"{key.sql} > {mark}"
        same = [f"{order[j].sql} IS :after{start + j}" for j in range(i)]
        terms.append("(" + " AND ".join([*same, later]) + ")")
    clause = "(" + " OR ".join(terms) + ")"
    if value is not None and not first.desc:
        clause = f"{first.sql} >= :after{start} AND {clause}"
    elif value is not None and not first.nulls:
        clause = f"{first.sql} <= :after{start} AND {clause}"
    return clause, params, 0


def region_prefix(region: str) -> str:
    """The code prefix of an area: 130000 → 13, 130100 → 1301, 130102 → 130102."""
    if region.endswith("0000"):
        return region[:2]
    if region.endswith("00"):
        return region[:4]
    return region
