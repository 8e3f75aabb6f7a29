"""The uplink's and the archive's batches: at most ``limit`` messages, every envelope once
and in sequence, every checkpoint once and never before the envelopes it covers."""

import pytest

from node import config as config_mod
from node.replication.outbox import Outbox
from node.service import Node
from tests.factories import credit_code, enterprise, js


@pytest.fixture
def node(node_dir, clock):
    n = Node(config_mod.load(node_dir, environ={}), clock=clock)
    for i in range(25):
        n.execute("enterprise.register", js(enterprise(credit_code=credit_code(i))), user="c")
        if i + 1 in (3, 10, 11, 20):
            n.checkpoint()
    n.checkpoint()
    yield n
    n.close()


@pytest.mark.parametrize("limit", [1, 2, 3, 10, 1000])
def test_batches_hold_at_most_limit_messages_and_lose_nothing(node, limit):
    outbox = Outbox(lambda kind, origin: f"up.{kind}.{origin}")
    sent: list[tuple[str, int]] = []
    batches = 0
    while batch := outbox.next_batch(node.log, limit):
        assert len(batch) <= limit
        batches += 1
        outbox.acknowledged(batch)
        sent += [("cp" if seq < 0 else "env", abs(seq)) for _, _, seq in batch]
    assert [n for kind, n in sent if kind == "env"] == list(range(1, 26))
    assert [n for kind, n in sent if kind == "cp"] == [3, 10, 11, 20, 25]
    for i, (kind, n) in enumerate(sent):
        if kind == "cp":  # after the envelope at its size
            assert ("env", n) in sent[:i]
    if limit >= 30:
        assert batches == 1
