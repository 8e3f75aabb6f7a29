"""What a tier shows of its federation (docs/architecture.md §7): per origin and per child, applied,
pending, lag, quarantined and unknown-type counts — from the CLI, the library and HTTP — and a
county whose parent cannot be reached keeps recording and says so."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from federation.envelope import parse
from federation.suite import load_key
from node import config as config_mod
from node.api.app import make_app
from node.cli.main import main
from node.replication.importer import Importer
from node.replication.natsd import free_port
from node.replication.receiver import record_routes
from node.replication.status import federation_view
from node.service import Node
from node.users import Role, add_user
from tests.conftest import make_node_dir
from tests.factories import enterprise
from tests.node.replication.test_import import COUNTIES, forge, setup


def test_per_origin_and_per_child_view(tmp_path, clock):
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, c = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    last = parse(logs[a][0][-1])
    future = forge(  # a type this node does not know, on a's own record: kept, relayed verbatim
        logs[a][0][-1],
        a_key,
        seq=last.seq + 1,
        prev=last.hash,
        type="enterprise.future_thing/3",
        aggregate=last.aggregate,
        version=2,
    )
    items = [("envelope", e) for e in logs[a][0] + [future]]
    items += [("envelope", e) for e in logs[b][0][:2] + logs[b][0][3:]]  # b waits at a gap
    items += [("envelope", b"\x01\x02")]  # not an envelope
    items += [("checkpoint", n.encode()) for n in logs[b][1]]
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    importer = Importer(city)
    summary = importer.take(items)
    regions = importer.trust().regions
    record_routes(city.log, [f"anjian.up.{o}.env.{o}" for o in (a, a, b)], clock(), regions)
    # a route is what the hierarchy allows: a child relaying another county, or an origin
    # never certified, is not one
    record_routes(city.log, [f"anjian.up.{a}.env.{b}", f"anjian.up.{a}.env.999999"], 0, regions)
    view = federation_view(city, clock())
    city.close()
    assert summary["held"] == {b: {"applied": 2, "pending": len(logs[b][0]) - 3}}
    assert view["origins"][a] == {
        "applied": len(logs[a][0]) + 1,
        "pending": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
        "last_recorded_at": last.at,
        "quarantined": 0,
        "dropped": 0,
        "unknown_types": 1,
        "child": a,
    }
    assert view["origins"][b]["applied"] == 2
    assert view["origins"][b]["pending"] == len(logs[b][0]) - 3
    assert view["origins"][b]["lag_events"] == len(logs[b][0]) - 2
    assert view["children"][a] == {
        "origins": [a],
        "messages": 2,
        "last_seen": clock(),
        "lag_events": 0,
        "pending": 0,
    }
    assert view["quarantined"] == 1 and c not in view["origins"]
    # the unknown event is stored as it came, for the city's own uplink to relay
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    assert city.log.envelopes(0, 100, a)[-1] == future
    city.close()
    out = CliRunner().invoke(main, ["status", str(city_dir)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["federation"]["origins"][b]["pending"] > 0
    # one origin a page: the page says what follows, the children are whole on every page
    pages, after = [], None
    while True:
        args = ["status", str(city_dir), "--limit", "1"] + (["--after", after] if after else [])
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 0, out.output
        page = json.loads(out.output)["federation"]
        pages.append(list(page["origins"]))
        assert page["page"]["origins_held"] == 2 and page["children"] == view["children"]
        after = page["page"]["next"]
        if after is None:
            break
    assert pages == [[a], [b]]
    for bad in (["--limit", "0"], ["--after", "13"]):
        out = CliRunner().invoke(main, ["status", str(city_dir), *bad])
        assert out.exit_code == 2 and bad[0] in out.output, out.output


async def test_a_county_whose_parent_is_unreachable_records_and_says_so(
    tmp_path, aiohttp_client, clock
):
    directory = make_node_dir(tmp_path / "county")
    text = (directory / "node.toml").read_text()
    dead = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    (directory / "node.toml").write_text(
        text.replace('# parent = "nats://parent-host:4222"', f'parent = "{dead}"')
    )
    node = Node(config_mod.load(directory, environ={}), clock=clock)
    token = add_user(node.config.users_file, "clerk", Role.WRITER)
    client = await aiohttp_client(make_app(node))
    auth = {"Authorization": f"Bearer {token}"}
    resp = await client.post("/api/v1/enterprises", json=enterprise(), headers=auth)
    assert resp.status == 201
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # the first attempt to connect fails within moments
    while True:
        resp = await client.get("/api/v1/federation", headers=auth)
        view = await resp.json()
        if view["parts"]["uplink"]["last_error"] or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert view["parent"] == dead
    assert view["uplink"]["connected"] is False
    assert view["uplink"]["origins"]["130102"] == {
        "recorded": 1,
        "published": 0,
        "parent_applied": 0,
        "backlog": 1,
    }
    assert view["parts"]["uplink"]["last_error"]
    assert view["page"] == {"after": None, "limit": 100, "next": None, "origins_held": 0}
    for bad in ("after=x", "after=1301020", "limit=0", "limit=1001", "limit=a"):
        resp = await client.get(f"/api/v1/federation?{bad}", headers=auth)
        body = await resp.json()
        assert resp.status == 422, body
        assert body["error"]["fields"][0]["field"] == bad.split("=")[0], body
    await client.close()
    node.close()
