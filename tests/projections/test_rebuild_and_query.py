"""Rebuilding while the node serves, digests by region, and queries over HTTP and the CLI."""

import csv
import dataclasses
import io
import json

from click.testing import CliRunner

from node.cli.main import main
from node.projector import log_events, rebuild
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
    out = run(
        main, ["query", str(node_dir), "accident-stats", "--level", "province", "--csv"]
    ).stdout
    table = list(csv.DictReader(io.StringIO(out)))
    assert {(r["grade"], r["accidents"]) for r in table} == {
        ("general", "1"),
        ("larger", "1"),
        ("major", "1"),
    }
    bad = run(main, ["query", str(node_dir), "accidents", "--since", "yesterday"])
    assert bad.exit_code == 1 and "ISO 8601" in bad.stderr
    assert run(main, ["query", str(node_dir), "nonsense"]).exit_code == 2


async def test_query_over_http(aiohttp_client, node):
    from node.api.app import make_app
    from node.users import Role, add_user

    fill(node)
    token = add_user(node.config.users_file, "analyst", Role.READER)
    client = await aiohttp_client(make_app(node))
    headers = {"Authorization": f"Bearer {token}"}
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
    ):
        resp = await client.get(f"/api/v1/query/accidents?{bad}", headers=headers)
        assert resp.status == 422, bad
        assert "bad filter" in (await resp.text()) or "limit" in (await resp.text()), bad
    await client.close()


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
        f"anjian.{p.name}": (p.replays or ("0001_create_tables",))[-1] for p in ALL
    }
    assert applied["anjian.accidents"] == "0003_onward_reports_and_findings"
    assert applied["anjian.enforcement"] == "0003_enterprise_checks"
    assert applied["anjian.licences"] == "0002_enterprise_name_key"


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
