import sqlite3
from datetime import datetime

import pytest

from domain.base import CHINA, to_ms
from domain.errors import Invalid, Refused
from node.errors import Conflict, NotFound
from node.service import Node
from tests.factories import accident, credit_code, enterprise, js


def sup(version, **fields):
    """A supplement body revising ``version``."""
    return js({"expected_version": version, **fields})


def count(node):
    return node.status()["event_count"]


def test_record_and_read_back(any_node):
    node = any_node
    e = node.execute("enterprise.register", js(enterprise()), user="zhang")
    assert (e["version"], e["position"]) == (1, 1)
    a = node.execute("accident.report", js(accident(deaths=3)), user="li")
    assert node.show(a["id"])["grade"] == "larger"
    assert node.show(a["id"], "accident")["history"][0]["actor"] == {"user": "li", "node": "130102"}
    status = node.status()
    assert status | {"clock": None} == {
        "origin": "130102",
        "tier": "county",
        "region": "130102",
        "parent": None,
        "store": node.config.store.backend,
        "event_count": 2,
        "last_position": 2,
        "raw_readings": 0,
        "signed_log": {**status["signed_log"], "envelopes": 2, "last_checkpoint": 0},
        "clock": None,
    }


def test_events_are_stored_under_their_wire_names(node):
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    node.execute("accident.report", js(accident()), user="zhang")
    db = sqlite3.connect(node.config.sqlite_file)
    assert [r[0] for r in db.execute("SELECT topic FROM stored_events ORDER BY rowid")] == [
        "enterprise.registered/1",
        "accident.reported/1",
    ]
    entries = node.log.read(0, 10)
    assert entries[1]["payload"]["grade"] == "general" and entries[1]["position"] == 2


def test_the_log_survives_reopening(load_config, clock):
    first = Node(load_config(), clock=clock)
    a = first.execute("accident.report", js(accident()), user="zhang")
    first.execute(
        "accident.supplement",
        sup(1, deaths=4),
        user="zhang",
        target=a["id"],
    )
    first.close()
    again = Node(load_config(), clock=clock)
    assert again.show(a["id"])["grade"] == "larger"
    assert again.show(a["id"])["version"] == 2
    again.close()


@pytest.mark.parametrize(
    ("kind", "body", "target", "error"),
    [
        ("enterprise.register", js(enterprise(credit_code="91350100M000100Y44")), None, Invalid),
        ("enterprise.register", js(enterprise(division="130103")), None, Invalid),
        ("enterprise.register", "{not json", None, Invalid),
        ("enterprise.register", "[1, 2]", None, Invalid),
        ("accident.report", js(accident(deaths=-1)), None, Invalid),
        ("accident.supplement", sup(1, deaths=1), "not-a-uuid", NotFound),
        (
            "accident.supplement",
            sup(1, deaths=1),
            "6333e143-bf7c-4588-9eb5-17c59e8638b9",
            NotFound,
        ),
        ("accident.supplement", sup(1, deaths=1), None, Invalid),
        ("accident.supplement", js({"deaths": 1}), None, Invalid),
        ("accident.fly", "{}", None, NotFound),
    ],
)
def test_bad_commands_record_nothing(any_node, kind, body, target, error):
    node = any_node
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    with pytest.raises(error):
        node.execute(kind, body, user="zhang", target=target)
    assert count(node) == 1


def test_a_command_on_the_wrong_kind_of_record_is_not_found(node):
    e = node.execute("enterprise.register", js(enterprise()), user="zhang")
    with pytest.raises(NotFound, match="no accident"):
        node.execute(
            "accident.supplement",
            sup(1, deaths=1),
            user="z",
            target=e["id"],
        )


def test_registering_the_same_enterprise_twice_conflicts(any_node):
    node = any_node
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    with pytest.raises(Conflict, match="already exists"):
        node.execute("enterprise.register", js(enterprise(name="另一名称")), user="li")
    assert count(node) == 1


def test_expected_version_guards_against_lost_updates(any_node):
    node = any_node
    a = node.execute("accident.report", js(accident()), user="zhang")
    node.execute(
        "accident.supplement",
        sup(1, deaths=1),
        user="zhang",
        target=a["id"],
    )
    with pytest.raises(Conflict, match="at version 2, not 1"):
        node.execute(
            "accident.supplement",
            sup(1, deaths=2),
            user="li",
            target=a["id"],
        )
    assert node.show(a["id"])["deaths"] == 1


def test_two_store_connections_writing_the_same_version_one_wins(load_config, clock):
    """Two writers (e.g. `anjian record` beside a running server) load the same version; the
    store's uniqueness on (id, version) lets one win and the other gets Conflict."""
    one = Node(load_config(), clock=clock)
    two = Node(load_config(), clock=clock)
    a = one.execute("accident.report", js(accident()), user="zhang")
    mine, theirs = one.load("accident", a["id"]), two.load("accident", a["id"])
    from domain.accident import SupplementAccident

    mine.supplement(
        SupplementAccident.model_validate_json(sup(1, deaths=1)),
        one.context("zhang"),
    )
    theirs.supplement(
        SupplementAccident.model_validate_json(sup(1, deaths=5)),
        two.context("li"),
    )
    one.log.append(mine)
    with pytest.raises(Conflict, match="someone else"):
        two.log.append(theirs)
    assert two.show(a["id"])["deaths"] == 1 and count(two) == 2
    one.close()
    two.close()


def test_the_supplement_window_uses_the_node_clock(node, clock):
    a = node.execute("accident.report", js(accident(industry="fire")), user="zhang")
    # occurred 2026-11-29 14:00 China time: 7 days run to 2026-12-06 24:00 China time
    clock.now_ms = to_ms(datetime(2026, 12, 7, tzinfo=CHINA)) - 1
    node.execute("accident.supplement", sup(1, deaths=1), user="z", target=a["id"])
    clock.advance(1)
    with pytest.raises(Refused, match="within 7 days"):
        node.execute(
            "accident.supplement",
            sup(2, deaths=2),
            user="z",
            target=a["id"],
        )
    assert count(node) == 2


def test_a_voided_enterprise_can_be_registered_again(node):
    e = node.execute("enterprise.register", js(enterprise()), user="zhang")
    node.execute("enterprise.void", js({"reason": "登记错误"}), user="zhang", target=e["id"])
    again = node.execute("enterprise.register", js(enterprise(name="重新登记")), user="li")
    assert again["id"] == e["id"] and again["version"] == 3
    shown = node.show(e["id"])
    assert shown["voided"] is None and shown["name"] == "重新登记"
    with pytest.raises(Conflict, match="already exists"):
        node.execute("enterprise.register", js(enterprise()), user="li")


def test_enterprise_lifecycle_through_the_node(any_node):
    node = any_node
    e = node.execute(
        "enterprise.register", js(enterprise(credit_code=credit_code(5))), user="zhang"
    )
    node.execute(
        "enterprise.correct",
        js({"address": "新地址", "reason": "地址变更", "expected_version": 1}),
        user="li",
        target=e["id"],
    )
    node.execute("enterprise.close", js({"reason": "依法关闭"}), user="li", target=e["id"])
    with pytest.raises(Refused, match="closed"):
        node.execute(
            "enterprise.correct",
            js({"name": "X公司", "reason": "更名", "expected_version": 3}),
            user="li",
            target=e["id"],
        )
    assert count(node) == 3
    shown = node.show(e["id"])
    assert shown["address"] == "新地址" and shown["closed"]["reason"] == "依法关闭"
    assert [h["event"] for h in shown["history"]] == [
        "enterprise.registered/1",
        "enterprise.corrected/1",
        "enterprise.closed/1",
    ]


def test_commits_are_synced_to_disk(node):
    """WAL with synchronous=FULL: an acknowledged write survives a crash of the machine, not
    only of the process (the SIGKILL test covers the process)."""
    recorder = node.log.app.recorder
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2  # FULL


def test_a_checkpoint_signed_at_once_by_two_processes_of_the_node_is_kept_once(node):
    """A server and a CLI command of the same node may both sign the checkpoint of one size;
    the second must not fail the command that crossed it (its events are already recorded)."""
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    size, root = node.log.tree()
    first = node.checkpoint()
    assert first is not None
    note = node.log.checkpoints()[-1]
    node.log.add_checkpoint(size, root, note + " ")  # what the other process signed
    assert node.log.checkpoints() == [note]


def test_a_query_while_the_projector_is_still_making_its_schema_answers_no_rows(node):
    """The projections process creates its file before its tables: a query in that moment
    answers no rows (as before the file exists), never 'no such table'."""
    from node import reports
    from projections.queries import Filters

    node.execute("accident.report", js(accident()), user="li")
    path = node.config.projections_file
    sqlite3.connect(path).close()  # the file is there, its schema not yet
    assert node.query("accidents", Filters()) == []
    assert reports.build(node, "accidents", Filters()).rows == []
    node.project()  # the schema comes in one transaction, then the rows
    assert len(node.query("accidents", Filters())) == 1
    assert len(reports.build(node, "accidents", Filters()).rows) == 1
