"""Rebuilding while the node serves, digests by region, and queries over HTTP and the CLI."""

import csv
import dataclasses
import io
import json

from click.testing import CliRunner

from node.cli.main import main
from node.projector import log_events, rebuild
from projections.queries import Filters
from tests.factories import accident, enterprise, inspection, js


def fill(node):
    node.execute("enterprise.register", js(enterprise()), user="u")
    for deaths in (0, 3, 12):
        node.execute("accident.report", js(accident(deaths=deaths)), user="u")


def test_a_rebuild_replaces_the_tables_only_when_complete(node):
    fill(node)
    node.project()
    before = node._projector.store.digest()
    reader = node._projector.store.db  # a reader of the old file, as the server holds
    old_rows = reader.execute("SELECT COUNT(*) FROM accidents").fetchone()[0]
    result = rebuild(node.config, node.log, "accidents")
    assert result == {"rebuilt": "accidents", "events": 4}
    assert reader.execute("SELECT COUNT(*) FROM accidents").fetchone()[0] == old_rows == 3
    node.project()  # picks up the new file
    assert node._projector.store.digest() == before
    rebuild(node.config, node.log)  # all of them
    node.project()
    assert node._projector.store.digest() == before


def test_digest_by_region_and_each_table(node_dir, node):
    fill(node)
    node.close()
    run = CliRunner().invoke
    whole = json.loads(run(main, ["projections", "digest", str(node_dir)]).stdout)
    mine = json.loads(
        run(main, ["projections", "digest", str(node_dir), "--region", "130100"]).stdout
    )
    other = json.loads(
        run(main, ["projections", "digest", str(node_dir), "--region", "140000"]).stdout
    )
    assert whole["digest"] == mine["digest"] != other["digest"]  # everything here is in 130100
    each = json.loads(run(main, ["projections", "digest", str(node_dir), "--each"]).stdout)
    assert {"all", "accidents", "enterprises", "origins"} <= set(each)


def test_query_from_the_cli_as_json_and_csv(node_dir, node):
    fill(node)
    node.close()
    run = CliRunner().invoke
    rows = json.loads(run(main, ["query", str(node_dir), "accidents", "--grade", "major"]).stdout)
    assert [r["deaths"] for r in rows] == [12]
    by_code = run(main, ["query", str(node_dir), "accidents", "--industry", "coal_mine"])
    assert by_code.exit_code == 0 and len(json.loads(by_code.stdout)) == 3  # codes as printed
    out = run(
        main, ["query", str(node_dir), "accident-stats", "--level", "province", "--csv"]
    ).stdout
    assert out.startswith("\ufeff")  # a byte-order mark: Excel opens the Chinese right
    table = list(csv.DictReader(io.StringIO(out[1:])))
    assert {(r["grade"], r["grade_label"], r["accidents"]) for r in table[:-1]} == {
        ("general", "一般", "1"),
        ("larger", "较大", "1"),
        ("major", "重大", "1"),
    }
    assert table[-1]["grade"] == "total" and table[-1]["accidents"] == "3"  # 合计 in Chinese
    for option in (["--since", "yesterday"], ["--region", "abc"], ["--limit", "abc"]):
        bad = run(main, ["query", str(node_dir), "accidents", *option])
        assert bad.exit_code == 2, (option, bad.stderr)  # every bad filter: a usage error
        assert option[0] in bad.stderr
    assert run(main, ["query", str(node_dir), "nonsense"]).exit_code == 2


async def test_query_over_http(aiohttp_client, node):
    from node.api.app import make_app
    from node.users import Role, add_user

    fill(node)
    token = add_user(node.config.users_file, "analyst", Role.READER)
    client = await aiohttp_client(make_app(node))
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    node.project()
    resp = await client.get(
        "/api/v1/query/accidents?region=130102&limit=2&offset=0", headers=headers
    )
    body = await resp.json()
    assert resp.status == 200 and len(body["rows"]) == 2
    resp = await client.get(
        "/api/v1/query/accidents?region=130102&limit=2&offset=2", headers=headers
    )
    assert len((await resp.json())["rows"]) == 1
    resp = await client.get("/api/v1/query/nope", headers=headers)
    assert resp.status == 404
    for bad in (
        "limit=many",
        "limit=0",
        "limit=20000",
        "offset=-1",
        f"offset={2**70}",
        f"since={2**70}",
        "until=-99999999999999999999",
        "region=13",
        "level=street",
        "as_of=yesterday",
        "grade=foo",  # a code no query knows: said, not an empty answer
        "industry=mine",
        "status=done",
        "region=999999",  # six digits, but no division
    ):
        resp = await client.get(f"/api/v1/query/accidents?{bad}", headers=headers)
        assert resp.status == 422, bad
        assert "bad filter" in (await resp.text()) or "limit" in (await resp.text()), bad
    await client.close()


async def test_query_over_http_as_a_person_and_a_program_read_it(aiohttp_client, node):
    import openpyxl

    from node.api.app import make_app
    from node.users import Role, add_user

    fill(node)
    token = add_user(node.config.users_file, "analyst", Role.READER)
    client = await aiohttp_client(make_app(node))
    headers = {"Authorization": f"Bearer {token}"}  # no Accept-Language: Chinese
    node.project()
    url = "/api/v1/query"
    rows = (await (await client.get(f"{url}/accidents", headers=headers)).json())["rows"]
    assert rows[0]["occurred_at"].endswith("+08:00") and rows[0]["division_name"] == "长安区"
    assert isinstance(rows[0]["late_report"], bool)
    epoch = await (await client.get(f"{url}/accidents?time=epoch", headers=headers)).json()
    assert isinstance(epoch["rows"][0]["occurred_at"], int)  # for a program that asks
    resp = await client.get(f"{url}/accidents?format=csv&region=140000", headers=headers)
    text = await resp.text()
    assert resp.status == 200 and text.startswith("\ufeff") and "发生时间" in text
    assert text.count("\n") == 1  # nothing in 山西: the header alone
    resp = await client.get(f"{url}/accident-stats?format=xlsx&region=130000", headers=headers)
    assert resp.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    sheet = book.worksheets[0]
    assert sheet["A1"].value.startswith("生产安全事故统计（河北省")
    last = list(sheet.iter_rows(values_only=True))[-1]
    stats = await (await client.get(f"{url}/accident-stats?region=130000", headers=headers)).json()
    assert last[0] == "合计"
    titles = [c.value for c in sheet[2]]
    assert last[titles.index("事故起数")] == sum(r["accidents"] for r in stats["rows"]) == 3
    assert len(book.worksheets) == 3  # with the national layouts
    layout = await client.get(f"{url}/accident-stats?layout=region-grade", headers=headers)
    body = await layout.json()
    assert body["title"] == "生产安全事故统计（按地区、等级）" and body["totals"]["accidents"] == 3
    for bad, field in (("format=pdf", "format"), ("time=unix", "time"), ("layout=x", "layout")):
        resp = await client.get(f"{url}/accident-stats?{bad}", headers=headers)
        error = (await resp.json())["error"]
        assert resp.status == 422 and error["fields"][0]["field"] == field, bad
    wrong = await client.get(f"{url}/accidents?layout=industry", headers=headers)
    assert wrong.status == 422
    for query, bad in (("accidents", "status=issued"), ("points", "grade=larger")):
        resp = await client.get(f"{url}/{query}?{bad}", headers=headers)  # not a filter of it
        assert resp.status == 422, (query, bad)
    resp = await client.get(f"{url}/open-cases?status=issued", headers=headers)  # a licence's
    assert (await resp.json())["error"]["fields"][0]["field"] == "status"
    await client.close()


def test_query_from_the_cli_as_a_workbook(node_dir, node, tmp_path):
    import openpyxl

    fill(node)
    node.close()
    run = CliRunner().invoke
    out = tmp_path / "stats.xlsx"
    args = ["query", str(node_dir), "enforcement-stats", "--format", "xlsx"]
    assert run(main, args).exit_code == 2  # a workbook goes to a file
    result = run(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    book = openpyxl.load_workbook(out)
    assert [ws.title for ws in book.worksheets] == ["1 安全生产执法统计", "2 安全生产执法统计"]
    layout = run(main, ["query", str(node_dir), "accident-stats", "--layout", "industry"])
    assert json.loads(layout.stdout)["rows"][0]["industry_label"] == "煤矿"


def test_the_schema_comes_from_registered_migrations(node):
    from projections.store import ALL

    node.project()
    applied = {
        r["migration_set"]: r["name"]
        for r in node._projector.store.db.query(
            "SELECT migration_set, name FROM _sqlite_migrations"
        )
    }
    assert applied == {  # each projection's last schema version
        f"anjian.{p.name}": max(("0001_create_tables", *p.replays, *p.reindexes)) for p in ALL
    }
    assert applied["anjian.accidents"] == "0004_registers_in_order_and_statistics_cells"
    assert applied["anjian.enforcement"] == "0004_open_cases_in_order_and_statistics_cells"
    assert applied["anjian.licences"] == "0003_register_in_order"
    assert applied["anjian.sensors"] == "0002_history_in_time_order"


def test_a_new_schema_version_replays_that_projection_from_the_start(node):
    """A store made before the enforcement tables' version 2: opening it recreates them and
    the enforcement projection alone replays the log, to the same digest."""
    from projections.store import ProjectionStore

    fill(node)
    node.execute("case.open-inspection", js(inspection()), user="u")
    node.project()
    store = node._projector.store
    before = store.digest()
    position = store.position()
    store.db.execute(
        "DELETE FROM _sqlite_migrations WHERE name = '0002_licence_recommendations_apart'"
    )
    store.db.execute("UPDATE cases SET outcome = 'stale'")
    reopened = ProjectionStore(store.path)
    assert (
        reopened.positions()["enforcement"] == 0 and reopened.positions()["accidents"] == position
    )
    assert reopened.db.execute("SELECT count(*) FROM cases").fetchone()[0] == 0
    reopened.close()
    node._projector.reopen()
    node.project()
    assert node._projector.store.digest() == before


def test_new_indexes_come_without_a_replay(node):
    """A store made before the licence register's indexes: opening it drops the indexes the
    schema no longer names and makes the new ones; nothing is replayed."""
    from projections.store import ProjectionStore

    fill(node)  # an enterprise: the licences projection's
    node.project()
    store = node._projector.store
    before, positions = store.digest(), store.positions()
    store.db.execute("DELETE FROM _sqlite_migrations WHERE name = '0003_register_in_order'")
    store.db.execute("DROP INDEX licences_in_order")
    store.db["licences"].create_index(["division"])  # as the schema before it had
    reopened = ProjectionStore(store.path)
    names = {index.name for index in reopened.db["licences"].indexes}
    assert "licences_in_order" in names and "idx_licences_division" not in names
    assert reopened.positions() == positions and reopened.digest() == before
    reopened.close()


def test_malformed_and_unknown_events_are_counted_and_never_stop_the_projections(tmp_path, node):
    """An event of a known type lacking a field it requires (or of a type this node does not
    know) is counted against its origin; one whose field holds a value of the wrong type is
    left out by the projection that cannot apply it; the events around them are applied."""
    from projections.base import LogEvent, well_formed
    from projections.store import ProjectionStore

    fill(node)
    good = log_events(node.log, 0)
    origin = good[0].origin
    wrong_type = {**good[1].payload, "division": 130102, "deaths": "three"}
    broken = [
        LogEvent(100, origin, good[1].aggregate, 9, "accident.reported/1", 1, {"deaths": 1}),
        LogEvent(101, origin, good[1].aggregate, 10, "accident.renamed/7", 1, {"x": 1}),
        LogEvent(102, origin, "f" * 32, 1, "accident.reported/1", 1, wrong_type),
    ]
    broken = [dataclasses.replace(e, valid=well_formed(e.type, e.payload)) for e in broken]
    assert [e.valid for e in broken] == [False, False, True] and all(e.valid for e in good)
    store = ProjectionStore(tmp_path / "p.db")
    store.apply(good[:2] + broken + [dataclasses.replace(good[2], position=103)])
    [row] = store.db.query("SELECT events, unknown FROM origins")
    assert row == {"events": 6, "unknown": 2}
    # the wrongly typed one is left out by the accidents projection alone, in the same batch
    assert store.db.execute("SELECT count(*) FROM accidents").fetchone()[0] == 2
    assert store.position() == 103


async def test_a_file_or_a_layout_is_the_whole_result_or_refused(aiohttp_client, node, monkeypatch):
    from node.api import query as query_route
    from node.api.app import make_app
    from node.users import Role, add_user

    fill(node)  # three accidents: three groups of accident-stats
    token = add_user(node.config.users_file, "analyst", Role.READER)
    client = await aiohttp_client(make_app(node))
    headers = {"Authorization": f"Bearer {token}"}
    node.project()
    url = "/api/v1/query/accident-stats"
    page = await (await client.get(f"{url}?layout=region-grade&limit=1", headers=headers)).json()
    assert page["totals"]["accidents"] == 1  # a page, when one is asked for
    whole = await (await client.get(f"{url}?layout=region-grade", headers=headers)).json()
    assert whole["totals"]["accidents"] == 3
    monkeypatch.setattr(query_route, "MAX_FILE_ROWS", 2)  # more groups than a file may hold
    for ask in ("format=csv", "format=xlsx", "layout=industry"):
        resp = await client.get(f"{url}?{ask}", headers=headers)
        error = (await resp.json())["error"]
        assert resp.status == 422 and error["code"] == "too_many_rows", ask  # never cut short
    await client.close()


def test_a_rebuild_while_another_process_reads_the_old_file_is_what_everyone_reads_after(node):
    """The old file's write-ahead log outlives the swap while another process (the server's
    readers, a `anjian query`) has the file open: the rebuilt tables must still be what the
    projector and every new reader see, never the old file's pages from that log."""
    import sqlite3
    import subprocess
    import sys

    fill(node)
    node.project()
    store = node._projector.store
    store.db.execute("PRAGMA wal_autocheckpoint = 0")  # keep what follows in the log
    store.db.execute("DELETE FROM accidents")  # the old file's view, unlike the rebuilt one
    path = node.config.projections_file
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
            " db.execute('SELECT COUNT(*) FROM accidents').fetchone(); print('open', flush=True);"
            " sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        assert node.query("accidents", Filters()) == []  # this thread's reader, kept open
        rebuild(node.config, node.log)
        assert len(node.query("accidents", Filters())) == 3  # reads the rebuilt tables
        node.project()  # the projector goes on with the rebuilt tables
        fresh = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        assert fresh.execute("SELECT COUNT(*) FROM accidents").fetchone()[0] == 3
        assert fresh.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        fresh.close()
        node.execute("accident.report", js(accident(deaths=1)), user="u")
        node.project()
        assert node._projector.store.db.execute("SELECT COUNT(*) FROM accidents").fetchone()[0] == 4
    finally:
        reader.communicate("", timeout=10)
