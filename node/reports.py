"""A named query as its reader gets it, the same over HTTP and on the command line: JSON rows
as a person reads them (``projections.present``), CSV, or an XLSX workbook with a title row,
Chinese column titles and totals; the statistics also in the national reports' layouts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlite_utils

from domain.errors import Refused
from domain.i18n import EN, _, language
from domain.labels import division_name
from node.errors import NotFound
from node.service import Node
from projections import present
from projections.queries import QUERIES, Filters, columns_of, next_page, run
from projections.store import reading

FORMATS = ("json", "csv", "xlsx")
TIMES = ("iso", "epoch")
TITLES = {
    "accidents": "生产安全事故台账",
    "accident-stats": "生产安全事故统计",
    "accident-receipts": "事故报告逐级接收情况",
    "accident-findings": "迟报、漏报、谎报、瞒报认定",
    "exceptions": "数据比对异常",
    "enforcement-stats": "安全生产执法统计",
    "open-cases": "未结执法案件",
    "licences": "安全生产许可证台账",
    "unlicensed": "无有效许可证企业",
    "duplicate_codes": "重复登记企业",
    "points": "监测测点",
    "alarms": "在报报警、断电、故障",
    "excursions": "报警、断电、故障记录",
    "summaries": "监测数据5分钟汇总",
    "origins": "各来源节点",
}


class BadRequest(ValueError):
    """A format, time or layout asked for that is not one of ours (names the parameter)."""

    def __init__(self, parameter: str, message: Any) -> None:
        self.parameter = parameter
        super().__init__(message)


@dataclass(frozen=True)
class Report:
    query: str
    filters: Filters
    rows: list[dict[str, Any]]  # as presented
    columns: list[str]  # the query's own columns (for an empty result's header)
    scope: str | None = None  # the node's region: the report's area when no region is asked
    next: str | None = None  # the ``after`` of the page that follows (None: the last page)


def check(name: str, fmt: str, time: str, layout: str | None) -> None:
    """Refuse an unknown query, format, time or layout, naming what was wrong."""
    if name not in QUERIES:
        raise NotFound(_("no query {name!r}; known: {known}", name=name, known=", ".join(QUERIES)))
    if fmt not in FORMATS:
        raise BadRequest("format", _("format is json (the default), csv or xlsx"))
    if time not in TIMES:
        raise BadRequest("time", _("time is iso (China time, the default) or epoch"))
    if layout is not None:
        if layout not in present.LAYOUTS:
            raise BadRequest(
                "layout", _("layout is one of {known}", known=", ".join(present.LAYOUTS))
            )
        if present.LAYOUTS[layout][0] != name:
            raise BadRequest(
                "layout",
                _(
                    "layout {layout} is a layout of {query}",
                    layout=layout,
                    query=present.LAYOUTS[layout][0],
                ),
            )


def build(
    node: Node, name: str, filters: Filters, time: str = "iso", whole: int | None = None
) -> Report:
    """Run the query and present its rows (in a reader thread: it reads the projections).
    ``whole``: a file or a layout is the whole result, not a page — up to this many rows, and
    refused (Refused ``too_many_rows``) beyond, never silently cut."""
    scope = node.config.node.region
    if whole is not None:
        filters = dataclasses.replace(filters, limit=whole, offset=0)
    with reading(node.config.projections_file) as db:
        if db is None:
            return Report(name, filters, [], [], scope)
        rows = run(db, name, filters)
        if whole is not None and len(rows) == whole and _more(db, name, filters, len(rows)):
            raise Refused(
                _(
                    "{query} has more than {n} rows for these filters: narrow the region or"
                    " the period (a file or a layout holds the whole result, never a part)",
                    query=name,
                    n=whole,
                ),
                code="too_many_rows",
            )
        columns = columns_of(db, name, filters)
        units = partial(_units, _unit_table(db)) if _sensor(name) else None
    presented = present.present(name, rows, time, units)
    return Report(name, filters, presented, columns, scope, next_page(name, filters, rows))


def _more(db: sqlite_utils.Database, name: str, filters: Filters, taken: int) -> bool:
    """Whether the query has a row beyond the first ``taken``."""
    return bool(run(db, name, dataclasses.replace(filters, limit=1, offset=taken)))


def _sensor(name: str) -> bool:
    return name in ("alarms", "excursions", "summaries")


def _unit_table(db: sqlite_utils.Database) -> dict[tuple[str, str], tuple[int, str]]:
    return {
        (r["site_code"], r["point"]): (r["scale"], r["unit"])
        for r in db.query(
            "SELECT s.site_code, p.point, p.scale, p.unit FROM points p"
            " JOIN sites s ON s.id = p.site_id"
        )
    }


def _units(
    table: Mapping[tuple[str, str], tuple[int, str]], site: str, point: str
) -> tuple[int, str] | None:
    return table.get((site, point))


def heading(report: Report) -> str:
    """The title row's region and period: 河北省 · 2026-01-01 至 2026-11-30."""
    region = report.filters.region or report.scope
    where = (division_name(region) or region) if region else "全部辖区"
    return f"{where} · {present.period(report.filters.since, report.filters.until)}"


def table(report: Report, layout: str | None) -> present.Table:
    """The report as one table: the query's own (a register, or the statistics with totals),
    or the layout asked for."""
    if layout is not None:
        return present.LAYOUTS[layout][1](report.rows, _level(report))
    return present.register(report.query, TITLES[report.query], report.rows, report.columns)


def _level(report: Report) -> str:
    return present.LEVEL_TITLES.get(report.filters.level, "地区")


def workbook(report: Report, layout: str | None) -> bytes:
    """The report as an XLSX workbook; the statistics carry the national reports' layouts as
    more sheets."""
    found = [table(report, layout)]
    if layout is None:
        found += [
            build_layout(report.rows, _level(report))
            for query, build_layout in present.LAYOUTS.values()
            if query == report.query
        ]
    return present.xlsx(found, heading(report))


def csv_text(report: Report, layout: str | None, lang: str | None = None) -> str:
    """CSV of the report (its one table): Chinese titles, or the column keys for a reader of
    English (``lang``: the reader's; the current language when None)."""
    return present.csv_text(table(report, layout), titles=(lang or language()) != EN)


def layout_rows(report: Report, layout: str) -> dict[str, Any]:
    """A layout as JSON: its title, columns (key and title), rows and totals."""
    shown = table(report, layout)
    return {
        "title": shown.title,
        "columns": [{"key": k, "title": t} for k, t in shown.columns],
        "rows": shown.rows,
        "totals": shown.totals,
    }
