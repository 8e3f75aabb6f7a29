"""`anjian query`, `anjian projections ...` and `anjian readings ...`: the registers and
statistics, the read projections themselves, and the raw readings store."""

from __future__ import annotations

import getpass
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from domain.base import iso
from domain.i18n import EN, _, language
from domain.sensors.readings import window_of
from domain.sensors.site import site_id
from federation.proof import SUMMARY
from node import reports
from node.access import readable_json
from node.audit.proofs import readings_file
from node.cli.base import NODE_DIR, emit, given, input_options, open_node, when
from node.errors import ConfigError
from node.projector import rebuild
from projections.present import LAYOUTS, present
from projections.queries import GRADES, INDUSTRIES, QUERIES, STATUSES, Filters, check_applies
from projections.store import BY_NAME

WHOLE = 100_000  # rows of a file or a layout on the command line (10,000 over HTTP)


@click.command()
@NODE_DIR
@click.argument("name", type=click.Choice(list(QUERIES)), metavar="NAME")
@click.option("--region", help="Division code of an area: a county, city or province.")
@click.option("--since", help="From this time (ISO 8601; a bare date is China time).")
@click.option("--until", help="Up to (not including) this time.")
@click.option("--grade", type=click.Choice(GRADES), help="An accident grade.")
@click.option("--industry", type=click.Choice(INDUSTRIES), help="An industry.")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    help="A licence status, a case stage, a finding, a receipt status or an exception kind.",
)
@click.option(
    "--level",
    type=click.Choice(["county", "city", "province"]),
    default="county",
    show_default=True,
    help="Statistics: the region level to group by.",
)
@click.option("--as-of", "as_of", help="For clock-relative lists (default: now).")
@click.option("--accident", help="accident-receipts, accident-findings: one accident's id.")
@click.option("--record", help="exceptions: the flags of one accident or case (its id).")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    help="Rows per page of JSON (default 100); a file or a layout holds the whole result.",
)
@click.option("--offset", type=click.IntRange(min=0), help="Rows to skip (a page).")
@click.option(
    "--after",
    help="A register's next page: the cursor the page before gave (printed on stderr).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "xlsx", "text"]),
    default="json",
    show_default=True,
    help="json, csv (UTF-8 with BOM), xlsx (a workbook: needs --out) or text.",
)
@click.option("--csv", "as_csv", is_flag=True, hidden=True)
@click.option(
    "--time",
    type=click.Choice(reports.TIMES),
    default="iso",
    show_default=True,
    help="Times as China time (iso) or as milliseconds since 1970 (epoch), for programs.",
)
@click.option(
    "--layout",
    type=click.Choice(list(LAYOUTS)),
    help="Statistics in a national report's layout: region-grade and industry "
    "(accident-stats), indicators (enforcement-stats).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the file here instead of printing it.",
)
def query(
    directory: Path,
    name: str,
    region: str | None,
    since: str | None,
    until: str | None,
    grade: str | None,
    industry: str | None,
    status: str | None,
    level: str,
    as_of: str | None,
    accident: str | None,
    record: str | None,
    limit: int | None,
    offset: int | None,
    after: str | None,
    fmt: str,
    as_csv: bool,
    time: str,
    layout: str | None,
    out: Path | None,
) -> None:
    """Query the projections. NAME is one of the queries (accidents, accident-stats,
    accident-receipts, accident-findings, exceptions, enforcement-stats, open-cases, licences,
    unlicensed, duplicate_codes, points, alarms, excursions, summaries, origins).

    \b
    Example: accidents of Shijiazhuang (130100) in June 2026, by month and grade:
      anjian query ./city accident-stats --region 130100 --since 2026-06-01 --until 2026-07-01
    Example: the same as a workbook, with the national report's layouts:
      anjian query ./city accident-stats --region 130100 --format xlsx --out stats.xlsx
    Example: records whose enterprise is not registered or differs (kind column):
      anjian query ./county exceptions --status unregistered
    """
    fmt = "csv" if as_csv else fmt
    if fmt == "xlsx" and out is None:
        raise click.UsageError(str(_("--format xlsx writes a file: give it with --out FILE")))
    try:
        reports.check(name, "json" if fmt == "text" else fmt, time, layout)
    except reports.BadRequest as e:
        option = "--" + e.parameter
        raise click.BadParameter(str(e.args[0]), param_hint=option) from None
    with open_node(directory) as node:
        node.project()
        try:
            filters = Filters.parse(
                {
                    "region": region,
                    "since": since,
                    "until": until,
                    "grade": grade,
                    "industry": industry,
                    "status": status,
                    "level": level,
                    "as_of": as_of,
                    "accident": accident,
                    "record": record,
                    "limit": str(limit or 100),
                    "offset": str(offset or 0),
                    "after": after,
                },
                node.clock(),
            )
            check_applies(name, filters)
        except ValueError as e:  # a bad filter is a usage error (exit 2) naming the option
            parameter = getattr(e, "parameter", None)
            hint = f"--{parameter.replace('_', '-')}" if parameter else None
            problem = getattr(e, "problem", None) if hint else None
            raise click.BadParameter(str(problem or e), param_hint=hint) from None
        paged = limit is not None or offset is not None or after is not None
        whole = None if paged or (fmt == "json" and layout is None) else WHOLE
        report = reports.build(node, name, filters, time, whole)
    _write(report, fmt, layout, out)
    if report.next is not None and whole is None:
        click.echo(str(_("next page: --after {cursor}", cursor=report.next)), err=True)


def _write(report: reports.Report, fmt: str, layout: str | None, out: Path | None) -> None:
    if fmt == "xlsx":  # a file, never the terminal (--out is required)
        data = reports.workbook(report, layout)
        assert out is not None
        out.write_bytes(data)
        click.echo(str(_("written: {path} ({size} bytes)", path=out, size=len(data))), err=True)
        return
    if fmt == "csv":
        text = reports.csv_text(report, layout)
    elif fmt == "text":
        shown = reports.table(report, layout)
        english = language() == EN  # the column keys, as the JSON names them
        lines = ["\t".join(k if english else t for k, t in shown.columns)]
        lines += ["\t".join(_text(r.get(k)) for k, _t in shown.columns) for r in shown.rows]
        if shown.totals is not None:
            cells = [_text(shown.totals.get(k, "")) for k, _t in shown.columns]
            lines.append("\t".join(["total" if english else shown.totals_label, *cells[1:]]))
        text = "\n".join(lines) + "\n"
    elif layout is not None:
        text = readable_json(reports.layout_rows(report, layout), indent=2) + "\n"
    else:
        text = readable_json(report.rows, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(str(_("written: {path} ({size} bytes)", path=out, size=len(text))), err=True)


def _text(value: Any) -> str:
    """A cell of ``--format text``: one line, with no tab that would shift the columns."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


@click.group()
def projections() -> None:
    """The read projections: rebuild them from the log, or print their digest."""


@projections.command("rebuild")
@NODE_DIR
@click.argument("name", required=False, type=click.Choice(list(BY_NAME)))
def projections_rebuild(directory: Path, name: str | None) -> None:
    """Rebuild from zero (one projection, or all) into a new file; a running node keeps
    serving the old tables until the new ones are complete."""
    with open_node(directory) as node:
        total = node.status()["event_count"]
        with click.progressbar(
            length=total,
            label=str(_("rebuilding")),
            file=sys.stderr,
            hidden=not sys.stderr.isatty(),
        ) as bar:
            emit(rebuild(node.config, node.log, name, progress=bar.update))


@projections.command("digest")
@NODE_DIR
@click.option("--region", help="Only rows of this area (division code).")
@click.option("--each", is_flag=True, help="One digest per table as well.")
def projections_digest(directory: Path, region: str | None, each: bool) -> None:
    """The digest over the canonical content of the event-derived tables: equal digests,
    equal views (national centre, backup centre, an auditor's replay)."""
    with open_node(directory) as node:
        node.project()
        assert node._projector is not None
        digest = node._projector.store.digest(region)
        emit(digest if each else {"digest": digest["all"], "region": region})


@projections.command("run")
@NODE_DIR
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
def projections_run(directory: Path, interval: float) -> None:
    """Follow the log and keep the projections up to date until stopped (SIGINT/SIGTERM)."""
    # the handler only sets a flag: one that took a lock (an Event's) could deadlock with the
    # main thread, which holds that lock at moments of its own wait; stops within ``interval``
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: stopping.append(signum))
    with open_node(directory) as node:
        while not stopping:
            if node.project() == 0:
                time.sleep(interval)


@click.group()
def readings() -> None:
    """Raw sensor readings: the local store (not the log) and what is derived from it."""


@readings.command("ingest")
@NODE_DIR
@click.argument("site")
@input_options("Batch as JSON: a file, or -.")
@click.option("--actor", default=None, help="Who records the derived events (default: your login).")
def readings_ingest(
    directory: Path, site: str, source: Any, legacy_source: Any, actor: str | None
) -> None:
    """Take a batch {"readings": [{"point", "t", "value", "status"}]} for SITE (its code).

    \b
    Example:
      echo '{"readings": [{"point": "CH4-01", "t": "2026-11-29T08:00:00+08:00", "value": 0.42}]}' |
        anjian readings ingest ./county 130102B001 --input -
    """
    raw = given(source, legacy_source).read()
    with open_node(directory) as node:
        emit(node.ingest(site, raw, user=actor or getpass.getuser()))


def _read(node: Any, site: str, state: dict[str, Any]) -> dict[str, Any]:
    """A signed summary as a person reads it: China time, each point's values in its unit."""
    units = {p: (v["scale"], v["unit"]) for p, v in node.show(site, "site")["points"].items()}
    shown = {
        k: iso(v) if k.endswith(("_at", "_start", "_end")) and isinstance(v, int) else v
        for k, v in state.items()
        if k != "points"
    }
    shown["points"] = present(
        "summaries",
        [{"site_code": site, "points": json.dumps(state.get("points", []))}],
        units=lambda _site, point: units.get(point),
    )
    return shown


@readings.command("export")
@NODE_DIR
@click.argument("site")
@click.option("--window", required=True, help="A time in the 5-minute window (ISO 8601).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def readings_export(directory: Path, site: str, window: str, out: Path) -> None:
    """Write the raw readings a signed summary covers (its site and window), as the canonical
    lines the summary's hash is over: the file `anjian audit prove --readings` proves.

    \b
    Example:
      anjian readings export ./county 130102B001 --window 2026-11-29T08:05 --out w.tsv
    """
    with open_node(directory) as node:
        start = window_of(when(window, "window") or 0)
        for row in node.log.site_events(site_id(site, node.config.node.region), SUMMARY):
            state = json.loads(bytes(row["state"]))
            if state["window_start"] == start:
                data = readings_file(node.readings, site, start, state["last_reading_id"])
                out.write_bytes(data)
                emit(
                    {
                        "readings": str(out),
                        "lines": data.count(b"\n"),
                        "summary": _read(node, site, state),
                    }
                )
                return
        raise ConfigError(
            _(
                "no signed summary of site {site} for the window at {window}",
                site=site,
                window=window,
            )
        )


@readings.command("prune")
@NODE_DIR
def readings_prune(directory: Path) -> None:
    """Drop raw readings older than [readings] retention_days, and dropped monitoring files
    kept in the file-drop folders that long (the log is never touched)."""
    with open_node(directory) as node:
        emit(node.prune_readings())
