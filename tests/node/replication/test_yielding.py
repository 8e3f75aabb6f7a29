"""What a busy tier's views and archive yield to: the views trail a backlog waiting in the
stream (not traffic the tier keeps up with), the archive trails full batches (not a trickle)."""

from collections.abc import Callable
from typing import Any

import pytest

from federation.memory import MemoryTransport
from federation.transport import Delivery
from node.replication.importer import Importer
from node.replication.receiver import Taker
from node.service import Node


def messages(count: int, pending: int) -> list[Delivery]:
    """Messages as a fetch returns them: the last one tells how many wait behind it."""
    return [Delivery("anjian.up.c.env.o", b"", pending=pending) for _ in range(count)]


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


@pytest.fixture
def taker(node: Node) -> Callable[[], Taker]:
    importer = Importer(node)
    return lambda: Taker(node, "memory://", call, call, importer, MemoryTransport())


def test_a_backlog_behind_the_batch_makes_the_tier_busy(taker: Callable[[], Taker]) -> None:
    t = taker()
    assert not t.busy() and not t.taking()
    t.note(messages(1000, pending=40_000), batch=1000)
    assert t.busy() and t.taking()


def test_traffic_the_tier_keeps_up_with_lets_the_views_follow_and_a_trickle_the_archive(
    taker: Callable[[], Taker],
) -> None:
    t = taker()
    t.note(messages(1000, pending=40_000), batch=1000)
    t.note(messages(1000, pending=300), batch=1000)  # the backlog is drained: a full batch
    assert not t.busy() and t.taking()

    trickle = taker()
    trickle.note(messages(12, pending=0), batch=1000)
    assert not trickle.busy() and not trickle.taking()


async def test_messages_held_in_memory_are_kept_from_coming_again(
    taker: Callable[[], Taker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Envelopes waiting in memory for their checkpoint may wait longer than the acknowledgement
    wait: their messages are said to be in progress, a third of the wait at the latest after
    the wait last started, so the broker does not deliver them again."""
    from node.replication import receiver

    extended: list[bytes] = []

    async def extend(data: bytes) -> None:
        extended.append(data)

    def held(data: bytes) -> Delivery:
        return Delivery("anjian.up.c.env.o", data, extender=lambda: extend(data))

    t = taker()
    t.unacked = [held(b"e1"), held(b"e2")]
    clock = [1000.0]
    monkeypatch.setattr(receiver.time, "monotonic", lambda: clock[0])
    await t.keep()
    assert extended == [b"e1", b"e2"]
    clock[0] += receiver.ACK_WAIT / 3 - 0.1
    await t.keep()  # not yet: the wait started again a moment ago
    assert len(extended) == 2
    clock[0] += 0.2
    await t.keep()
    assert extended == [b"e1", b"e2", b"e1", b"e2"]
    t.unacked = []
    clock[0] += receiver.ACK_WAIT
    await t.keep()  # nothing held: nothing said
    assert len(extended) == 4
