"""Cross-record checks at the county: an accident or inspection for a credit code the register
does not hold is accepted (offline first) and flagged 未登记企业 until the register catches up;
a name or industry that differs from the register's is flagged 信息不一致 with both values; a
credit code registered by two nodes is in the same list. Through the real projections
(``node.project()`` after each step), the CLI and the HTTP API."""

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner

from node import config as config_mod
from node.cli.main import main
from node.projector import log_events
from node.service import Node
from projections.queries import Filters, run
from projections.store import ProjectionStore
from tests.conftest import Clock, make_node_dir
from tests.factories import NOW, accident, credit_code, enterprise, inspection, js

CODE = credit_code(7)
NAME = "石家庄某化工有限公司（一分厂）"


def flags(node, **filters):
    node.project()
    return node.query("exceptions", Filters(as_of=0, **filters))


def brief(rows):
    return [
        (r["kind"], r["record_kind"], r["field"], r["recorded_value"], r["registered_value"])
        for r in rows
    ]


def test_an_unregistered_enterprise_is_flagged_until_the_register_catches_up(node):
    body = accident(enterprise_credit_code=CODE, enterprise_name=NAME, industry="coal_mine")
    acc = node.execute("accident.report", js(body), user="clerk")["id"]  # accepted
    [row] = flags(node)
    assert (row["kind"], row["label"], row["record_kind"], row["record_id"]) == (
        "unregistered",
        "未登记企业",
        "accident",
        acc,
    )
    assert (row["credit_code"], row["division"], row["recorded_value"]) == (CODE, "130102", NAME)
    assert (row["registered_in"], row["code_division"]) == (None, "130102")
    assert flags(node, record=acc) == [row] and flags(node, status="mismatch") == []

    # registered with the same name (brackets typed half-width) and another industry
    half_width = "石家庄某化工有限公司(一分厂) "
    registered = enterprise(credit_code=CODE, name=half_width, industry="hazardous_chemicals")
    ent = node.execute("enterprise.register", js(registered), user="clerk")
    assert brief(flags(node)) == [
        ("mismatch", "accident", "industry", "coal_mine", "hazardous_chemicals")
    ]
    node.execute(
        "enterprise.correct",
        js({"industry": "coal_mine", "reason": "行业登记有误", "expected_version": 1}),
        user="clerk",
        target=ent["id"],
    )
    assert flags(node) == []

    # voided, the enterprise is no longer registered: the flag comes back
    node.execute("enterprise.void", js({"reason": "登记错误"}), user="clerk", target=ent["id"])
    assert brief(flags(node)) == [("unregistered", "accident", None, NAME, None)]


def test_an_inspection_under_another_name_is_flagged_with_both_values(node):
    node.execute("enterprise.register", js(enterprise(credit_code=CODE, name=NAME)), user="c")
    case = node.execute(
        "case.open-inspection",
        js(inspection(enterprise_credit_code=CODE, enterprise_name="石家庄某化工公司")),
        user="c",
    )["id"]
    [row] = flags(node)
    assert (row["kind"], row["label"], row["record_kind"], row["record_id"], row["field"]) == (
        "mismatch",
        "信息不一致",
        "case",
        case,
        "name",
    )
    assert (row["recorded_value"], row["registered_value"]) == ("石家庄某化工公司", NAME)
    node.execute(
        "case.correct",
        js({"enterprise_name": NAME, "reason": "名称录错", "expected_version": 1}),
        user="c",
        target=case,
    )
    assert flags(node) == []
    # an inspection of an enterprise not registered here is flagged like an accident
    other = credit_code(8)
    unknown = node.execute(
        "case.open-inspection", js(inspection(enterprise_credit_code=other)), user="c"
    )["id"]
    assert [(r["kind"], r["record_id"], r["credit_code"]) for r in flags(node)] == [
        ("unregistered", unknown, other)
    ]


def test_an_accident_industry_that_names_the_accident_is_not_compared(node):
    node.execute("enterprise.register", js(enterprise(credit_code=CODE, name=NAME)), user="c")
    body = accident(enterprise_credit_code=CODE, enterprise_name=NAME, industry="road_traffic")
    node.execute("accident.report", js(body), user="c")  # a coal mine's lorry on the road
    assert flags(node) == []


def county(tmp, region):
    directory = make_node_dir(tmp / region, region=region)
    return Node(config_mod.load(directory, environ={}), clock=Clock(int(NOW.timestamp() * 1000)))


def test_a_city_sees_every_kind_in_one_list(tmp_path):
    """Two counties register one credit code (重复登记); one of them records an accident for a
    code registered only by the other (未登记企业 here, registered_in names the other)."""
    a, b = county(tmp_path, "130102"), county(tmp_path, "130104")
    shared = credit_code(5, "130104")
    for node in (a, b):
        division = node.config.node.region
        node.execute(
            "enterprise.register", js(enterprise(credit_code=shared, division=division)), user="c"
        )
    only_b = credit_code(6, "130104")
    b.execute(
        "enterprise.register", js(enterprise(credit_code=only_b, division="130104")), user="c"
    )
    acc = a.execute("accident.report", js(accident(enterprise_credit_code=only_b)), user="c")
    events = [e for node in (a, b) for e in log_events(node.log, 0, 1000)]
    a.close()
    b.close()
    store = ProjectionStore(Path(":memory:"))
    store.apply([dataclasses.replace(e, position=i + 1) for i, e in enumerate(events)])
    rows = run(store.db, "exceptions", Filters(as_of=0))
    assert [(r["kind"], r["record_kind"], r["division"], r["registered_in"]) for r in rows] == [
        ("duplicate_code", "enterprise", "130102", "130102,130104"),
        ("duplicate_code", "enterprise", "130104", "130102,130104"),
        ("unregistered", "accident", "130102", "130104"),
    ]
    assert rows[2]["record_id"] == acc["id"]
    # the list keeps the duplicate_codes query's rows, which stays as it was
    duplicates = run(store.db, "duplicate_codes", Filters(as_of=0))
    assert {r["id"] for r in duplicates} == {r["record_id"] for r in rows[:2]}
    assert [r["kind"] for r in run(store.db, "exceptions", Filters(region="130104"))] == [
        "duplicate_code"
    ]
    store.close()


def test_the_exceptions_from_the_cli(node_dir, node):
    acc = node.execute("accident.report", js(accident(enterprise_credit_code=CODE)), user="c")
    node.close()
    run_cli = CliRunner().invoke
    out = run_cli(main, ["query", str(node_dir), "exceptions"])
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.stdout)
    assert (row["kind"], row["record_id"]) == ("unregistered", acc["id"])
    picked = run_cli(main, ["query", str(node_dir), "exceptions", "--record", acc["id"]])
    assert json.loads(picked.stdout) == [row]
    other = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert (
        json.loads(run_cli(main, ["query", str(node_dir), "exceptions", "--record", other]).stdout)
        == []
    )
    table = run_cli(main, ["query", str(node_dir), "exceptions", "--csv"]).stdout
    assert table.splitlines()[0].startswith("\ufeffkind,kind_label,record_kind")
    bad = run_cli(main, ["query", str(node_dir), "exceptions", "--record", "42"])
    assert bad.exit_code == 2 and "not a record id" in bad.stderr  # a usage error


async def test_the_exceptions_over_http(aiohttp_client, node):
    from node.api.app import make_app
    from node.users import Role, add_user

    acc = node.execute("accident.report", js(accident(enterprise_credit_code=CODE)), user="c")
    token = add_user(node.config.users_file, "analyst", Role.READER)
    client = await aiohttp_client(make_app(node))
    node.project()
    resp = await client.get(
        f"/api/v1/query/exceptions?record={acc['id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    body = await resp.json()
    assert resp.status == 200
    assert [(r["kind"], r["record_id"]) for r in body["rows"]] == [("unregistered", acc["id"])]
    await client.close()


def test_the_record_view_shows_its_flags_and_findings(node):
    """node.service adds the flags (exceptions) of an accident or case and an accident's
    findings to its view, from the projections."""
    body = accident(enterprise_credit_code=CODE, enterprise_name=NAME)
    acc = node.execute("accident.report", js(body), user="c")["id"]
    node.execute(
        "accident.record-finding",
        js({"accident_id": acc, "finding": "omitted", "basis": "遗漏 1 名重伤人员"}),
        user="c",
    )
    node.project()
    view = node.show(acc, "accident")
    assert [(f["kind"], f["label"]) for f in view["flags"]] == [("unregistered", "未登记企业")]
    assert [(f["finding"], f["label"]) for f in view["findings"]] == [("omitted", "漏报")]
    node.execute("enterprise.register", js(enterprise(credit_code=CODE, name=NAME)), user="c")
    node.project()
    assert node.show(acc, "accident")["flags"] == []
