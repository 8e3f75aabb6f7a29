"""The uplink: publishes this node's log (its own envelopes and those it relays) to the
parent's JetStream, resuming from what the parent has durably applied."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from domain.i18n import _
from federation.transport import (
    Connection,
    Transport,
    TransportError,
    applied_subject,
    ask_positions,
    unpack_answer,
    up_subject,
)
from node.replication.outbox import Outbox, checkpoint_sizes, tree_sizes
from node.replication.part import Call, Part, describe, now_ms
from node.service import Node
from node.store import EventLog

log = logging.getLogger("anjian.federation")

ASK_TIMEOUT = 2.0  # seconds to wait for the parent's applied positions

REASK = 10.0  # seconds between asks while publishing (to see gaps the parent holds)


class Uplink(Part):
    """Publishes every envelope and checkpoint in this node's log to the parent's stream,
    resuming from what the parent has durably applied; recording never waits for it."""

    name = "uplink"

    def __init__(
        self, node: Node, url: str, read: Call, write: Call, transport: Transport | None = None
    ) -> None:
        super().__init__(node, url, read, write, transport)
        me = node.config.node.origin
        self.outbox = Outbox(
            lambda kind, origin: up_subject(me, kind, origin),
            max_bytes=node.config.federation.max_envelope,
        )
        self.parent_applied: dict[str, tuple[int, int]] = {}
        self.asked_at: int | None = None

    async def ask(self, nc: Connection) -> dict[str, tuple[int, int]] | None:
        me = self.node.config.node.origin
        try:
            reply = await nc.request(applied_subject(me), ask_positions(me), timeout=ASK_TIMEOUT)
            positions, limit = unpack_answer(reply)
            # an envelope the parent would refuse blocks its origin here, visibly, instead of
            # being published again and again
            own, before = self.node.config.federation.max_envelope, self.outbox.max_bytes
            self.outbox.max_bytes = own if limit is None else min(own, limit)
            if self.outbox.max_bytes > before:
                self.outbox.blocked.clear()  # judged again against the larger limit
            positions = cast(
                dict[str, tuple[int, int]], await self.read(believable, self.node.log, positions)
            )
        except TransportError as e:
            self.last_error = _("the parent node did not answer: {error}", error=describe(e))
            return None
        except ValueError as e:
            self.last_error = describe(e)
            log.error(_("uplink: {error}", error=describe(e)))
            return None
        self.parent_applied, self.asked_at = positions, now_ms()
        return positions

    async def session(self, nc: Connection) -> None:
        waited = 0
        while (positions := await self.ask(nc)) is None:
            if waited % 30 == 0:  # now and then, not every attempt
                log.warning(_("uplink: {error}; waiting before publishing", error=self.last_error))
            # the parent's receiver is often a moment behind its NATS (both just restarted):
            # ask again soon, then every ASK_TIMEOUT
            await asyncio.sleep(min(0.1 * 2 ** min(waited, 5), ASK_TIMEOUT))
            waited += 1
        self.outbox.sent = {o: p[0] for o, p in positions.items()}
        self.outbox.sent_cp = {o: p[1] for o, p in positions.items()}
        last_ask = time.monotonic()
        batch_size = self.node.config.federation.batch
        while True:
            batch = await self.read(self.outbox.next_batch, self.node.log, batch_size)
            await self.outbox.publish(nc, batch)
            if time.monotonic() - last_ask > REASK:
                previous = self.parent_applied
                last_ask = time.monotonic()
                if (positions := await self.ask(nc)) is not None:
                    self._rewind_stalled(previous, positions)

    def _rewind_stalled(
        self, previous: dict[str, tuple[int, int]], now: dict[str, tuple[int, int]]
    ) -> None:
        """An origin the parent has not advanced since the last ask although more was
        published: what it lacks never reached it (a stream restored from an older copy, a
        message lost); publish again from what it holds (a gap is repaired, never skipped)."""
        for origin, sent in list(self.outbox.sent.items()):
            applied = now.get(origin, (0, 0))[0]
            if applied < sent and previous.get(origin, (0, 0))[0] == applied:
                log.warning(
                    _(
                        "uplink: the parent holds {origin} at {applied} although {sent} were"
                        " published; publishing again from there",
                        origin=origin,
                        applied=applied,
                        sent=sent,
                    )
                )
                self.outbox.sent[origin] = applied
                self.outbox.sent_cp[origin] = now.get(origin, (0, 0))[1]

    def state(self, sizes: dict[str, int]) -> dict[str, Any]:
        return {
            "parent": self.url,
            "connected": self.connected,
            "last_error": self.last_error,
            "asked_at": self.asked_at,
            "blocked": {o: str(why) for o, why in sorted(self.outbox.blocked.items())},
            "origins": {
                origin: {
                    "recorded": size,
                    "published": self.outbox.sent.get(origin, 0),
                    "parent_applied": self.parent_applied.get(origin, (0, 0))[0],
                    "backlog": size - self.parent_applied.get(origin, (0, 0))[0],
                }
                for origin, size in sorted(sizes.items())
            },
        }


def believable(log_: EventLog, positions: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The parent's applied positions as far as they can be true: never beyond what this node
    holds (and so could have published). A larger one is a parent that lost its store and was
    given another's, or an answer that is not the parent's; believing it would make the uplink
    skip what the parent lacks, so it is cut to what is here, and said."""
    sizes = tree_sizes(log_)
    cps = checkpoint_sizes(log_)
    believed: dict[str, tuple[int, int]] = {}
    for origin, (applied, kept) in positions.items():
        here = sizes.get(origin, 0)
        if applied > here:
            log.error(
                _(
                    "uplink: the parent says it applied {origin} up to {applied}, but this node"
                    " holds {held} of it; going on from {held}",
                    origin=origin,
                    applied=applied,
                    held=here,
                )
            )
        believed[origin] = (min(applied, here), min(kept, cps.get(origin, 0)))
    return believed
