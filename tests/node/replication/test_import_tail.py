"""The tail a checkpoint has not covered yet: while more is arriving it waits, in memory when
the caller keeps the messages that carried it unacknowledged (nothing is written for it, and
a crash loses nothing: the messages come again), and at most HOLD envelopes of an origin wait
at all (past that they are applied on their own signatures)."""

import pytest

from node import config as config_mod
from node.replication import importer as importer_mod
from node.replication.importer import Importer
from node.service import Node
from tests.factories import credit_code, enterprise, js
from tests.node.replication.test_import import setup

A = "130102"


@pytest.fixture
def county_log(tmp_path, clock):
    """City directory, and county A's 4 + 21 envelopes with checkpoints at 4, 10, 20 and 25."""
    city_dir, _, _ = setup(tmp_path, clock)
    node = Node(config_mod.load(tmp_path / A, environ={}), clock=clock)
    for i in range(21):
        node.execute(
            "enterprise.register",
            js(enterprise(credit_code=credit_code(500 + i, A), division=A)),
            user="clerk",
        )
        if node.log.tree()[0] in (10, 20):
            node.checkpoint()
    node.close()  # signs the closing checkpoint at 25: the tests keep it from the city
    node = Node(config_mod.load(tmp_path / A, environ={}), clock=clock)
    envelopes = node.log.envelopes(0, 100)
    notes = {int(n.split("\n")[1]): n.encode() for n in node.log.checkpoints()}
    node.close()
    return city_dir, envelopes, notes


def items(envelopes, *notes):
    return [("envelope", e) for e in envelopes] + [("checkpoint", n) for n in notes]


def pending(node):
    return node.log.query("SELECT COUNT(*) AS n FROM import_pending")[0]["n"]


def test_the_tail_waits_in_memory_until_a_checkpoint_covers_it(county_log, clock):
    city_dir, envs, notes = county_log
    assert len(envs) == 25 and sorted(notes) == [4, 10, 20, 25]
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    importer = Importer(city)
    one = importer.take(items(envs[:15], notes[4], notes[10]), hold_tail=True, tail_in_memory=True)
    assert one["applied"] == 10 and one["unsettled"] == set(envs[10:15])
    assert one["held"] == {} and pending(city) == 0  # nothing written for the tail

    two = importer.take(items(envs[15:20], notes[20]), hold_tail=True, tail_in_memory=True)
    assert two["applied"] == 10 and two["unsettled"] == set()

    three = importer.take(items(envs[20:]), hold_tail=True, tail_in_memory=True)
    assert three["applied"] == 0 and three["unsettled"] == set(envs[20:])
    four = importer.take([], tail_in_memory=True)  # nothing more is coming: each signature
    assert four["applied"] == 5 and four["unsettled"] == set() and pending(city) == 0
    assert city.log.envelopes(0, 100, origin=A) == envs
    city.close()


def test_a_crash_loses_the_tail_only_from_memory(county_log, clock):
    city_dir, envs, notes = county_log
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    first = Importer(city).take(
        items(envs[:15], notes[4], notes[10]), hold_tail=True, tail_in_memory=True
    )
    assert first["unsettled"] == set(envs[10:15])
    # a new importer (the node restarted); the unacknowledged messages are delivered again
    again = Importer(city).take(items(envs[10:20], notes[20]), hold_tail=True, tail_in_memory=True)
    assert again["applied"] == 10 and again["duplicates"] == 0 and again["unsettled"] == set()
    city.close()


def test_without_memory_the_tail_waits_in_import_pending(county_log, clock):
    city_dir, envs, notes = county_log
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    one = Importer(city).take(items(envs[:15], notes[4], notes[10]), hold_tail=True)
    assert one["applied"] == 10 and "unsettled" not in one
    assert one["held"] == {A: {"applied": 10, "pending": 5}} and pending(city) == 5
    city.close()


def test_at_most_hold_envelopes_wait_for_a_checkpoint(county_log, clock, monkeypatch):
    monkeypatch.setattr(importer_mod, "HOLD", 3)
    city_dir, envs, notes = county_log
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    importer = Importer(city)
    one = importer.take(items(envs[:15], notes[4], notes[10]), hold_tail=True, tail_in_memory=True)
    assert one["applied"] == 12 and one["unsettled"] == set(envs[12:15])
    city.close()
