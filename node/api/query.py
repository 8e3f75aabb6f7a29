"""The query route, ``GET /api/v1/query/{name}``: a register or a statistic as JSON (rows as a
person reads them; ``?time=epoch`` keeps milliseconds for a program), CSV or XLSX
(``?format=csv|xlsx``), the statistics also in a national report's layout (``?layout=``)."""

from __future__ import annotations

from aiohttp import web

from domain.errors import Invalid
from domain.i18n import _, language
from node import reports
from node.api.shared import RUNTIME, ok
from projections.queries import Filters, check_applies

MAX_HTTP_ROWS = 10_000  # a page of JSON
MAX_FILE_ROWS = 10_000  # a file or a layout (the command line takes up to 100,000)


async def query(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    name = request.match_info["name"]
    fmt = request.query.get("format", "json")
    time = request.query.get("time", "iso")
    layout = request.query.get("layout") or None
    try:
        reports.check(name, fmt, time, layout)
    except reports.BadRequest as e:
        raise Invalid.field(e.parameter, e.args[0], code="bad_parameter") from None
    try:
        filters = Filters.parse(request.query, rt.node.clock())
        check_applies(name, filters)
    except (ValueError, OverflowError) as e:
        field = getattr(e, "parameter", None) or "query"
        raise Invalid.field(field, _("bad filter: {error}", error=e), code="bad_filter") from None
    if filters.limit > MAX_HTTP_ROWS:
        raise Invalid.field(
            "limit", _("at most {n} rows per page over HTTP", n=MAX_HTTP_ROWS), code="too_many"
        )
    # a file or a layout is the whole result (a page only when one is asked for)
    paged = any(p in request.query for p in ("limit", "offset", "after"))
    whole = None if paged or (fmt == "json" and layout is None) else MAX_FILE_ROWS
    report = await rt.read(reports.build, rt.node, name, filters, time, whole)
    if fmt == "csv":
        text = await rt.read(reports.csv_text, report, layout, language())
        return _file(name, "csv", text.encode())
    if fmt == "xlsx":
        return _file(name, "xlsx", await rt.read(reports.workbook, report, layout))
    if layout is not None:
        return ok({"query": name, "layout": layout, **reports.layout_rows(report, layout)})
    return ok(
        {
            "query": name,
            "rows": report.rows,
            "limit": filters.limit,
            "offset": filters.offset,
            "next": report.next,  # pass as ?after= for the next page (null: the last one)
        }
    )


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _file(name: str, suffix: str, body: bytes) -> web.Response:
    return web.Response(
        body=body,
        headers={
            "Content-Type": CONTENT_TYPES[suffix],
            "Content-Disposition": f'attachment; filename="{name}.{suffix}"',
        },
    )
