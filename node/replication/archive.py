"""The national centre's whole log on the archive stream of its own JetStream, for the
backup centre to follow."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from federation.transport import (
    ARCHIVE,
    ensure_stream,
)
from node.replication.outbox import Outbox
from node.replication.part import TRAIL, Call, Part
from node.service import Node


class Taking(Protocol):
    def taking(self) -> bool: ...


class Archive(Part):
    """The national centre's whole log (every origin) on the archive stream of its own
    JetStream, for the backup centre to follow."""

    name = "archive"

    def __init__(
        self, node: Node, url: str, read: Call, write: Call, receiver: Taking | None = None
    ) -> None:
        super().__init__(node, url, read, write)
        self.outbox = Outbox(lambda kind, origin: f"anjian.archive.{kind}.{origin}")
        self.receiver = receiver

    async def _yield_to_receiver(self, last: float) -> None:
        """While a backlog from below is being applied, the archive trails it (one batch every
        TRAIL seconds at least) and catches up after: applying comes first on a busy centre."""
        while (
            self.receiver is not None and self.receiver.taking() and time.monotonic() - last < TRAIL
        ):
            await asyncio.sleep(0.2)

    async def session(self, nc: Client) -> None:
        js = nc.jetstream()
        await ensure_stream(js, ARCHIVE)
        self.outbox.sent, self.outbox.sent_cp = {}, {}  # read again from the stream
        batch_size = self.node.config.federation.batch
        last = 0.0
        while True:
            await self._yield_to_receiver(last)
            last = time.monotonic()
            batch = await self.read(self.outbox.next_batch, self.node.log, batch_size)
            new = {origin for _, origin, _ in batch} - set(self.outbox.sent)
            for origin in new:  # first seen since the start: where the archive holds it
                self.outbox.sent[origin] = await last_seq(
                    js, ARCHIVE, self.outbox.subject("env", origin)
                )
                self.outbox.sent_cp[origin] = await last_seq(
                    js, ARCHIVE, self.outbox.subject("cp", origin)
                )
            if not new:
                await self.outbox.publish(js, batch)


async def last_seq(js: JetStreamContext, stream: str, subject: str) -> int:
    """The sequence (or checkpoint size) of the last message on a subject, from its id."""
    try:
        msg = await js.get_last_msg(stream, subject)
    except NotFoundError:
        return 0
    msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
    return int(msg_id.rsplit(":", 1)[-1]) if msg_id else 0
