"""Rebuilding while the node serves, digests by region, and queries over HTTP and the CLI."""

import csv
import io
import json

from click.testing import CliRunner

from node.cli import main
from node.projector import rebuild
from tests.factories import accident, enterprise, js


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
    from node.http import make_app
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
    resp = await client.get("/api/v1/query/accidents?limit=many", headers=headers)
    assert resp.status == 422
    await client.close()


def test_the_schema_comes_from_registered_migrations(node):
    node.project()
    applied = {
        r["migration_set"]: r["name"]
        for r in node._projector.store.db.query(
            "SELECT migration_set, name FROM _sqlite_migrations"
        )
    }
    assert applied == {
        f"anjian.{n}": "0001_create_tables"
        for n in ("accidents", "enforcement", "licences", "sensors", "origins")
    }
