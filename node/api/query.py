"""The query routes: a named query over the projections, as JSON, CSV or XLSX."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from aiohttp import web

from domain.errors import Invalid
from node.api.shared import RUNTIME, ok
from projections.queries import Filters


async def query(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        filters = Filters.parse(request.query, rt.node.clock())
    except (ValueError, OverflowError) as e:
        raise Invalid.field("query", f"bad filter: {e}") from None
    if filters.limit > 10_000:
        raise Invalid.field("limit", "at most 10000 rows per page over HTTP")
    rows = await rt.read(rt.node.query, request.match_info["name"], filters)
    fmt = request.query.get("format", "json")
    if fmt == "csv":
        return _csv(request.match_info["name"], rows)
    if fmt != "json":
        raise Invalid.field("format", "json (the default) or csv")
    return ok(
        {
            "query": request.match_info["name"],
            "rows": rows,
            "limit": filters.limit,
            "offset": filters.offset,
        }
    )


def _csv(name: str, rows: list[dict[str, Any]]) -> web.Response:
    """Rows as CSV for a spreadsheet: UTF-8 with a byte-order mark (so Chinese text opens
    right), nested values as JSON, and text that a spreadsheet would run as a formula
    (=, +, -, @) quoted with a leading apostrophe."""
    out = io.StringIO()
    out.write("\ufeff")
    if rows:
        columns = list(dict.fromkeys(k for row in rows for k in row))  # every row's, in order
        writer = csv.DictWriter(out, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
