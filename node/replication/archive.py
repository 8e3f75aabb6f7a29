"""The national centre's whole log on the archive stream of its own JetStream, for the
backup centre to follow."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from federation.transport import (
    ARCHIVE,
    Connection,
    Transport,
    position_of,
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
        self,
        node: Node,
        url: str,
        read: Call,
        write: Call,
        receiver: Taking | None = None,
        transport: Transport | None = None,
    ) -> None:
        super().__init__(node, url, read, write, transport)
        self.outbox = Outbox(lambda kind, origin: f"anjian.archive.{kind}.{origin}")
        self.receiver = receiver

    async def _yield_to_receiver(self, last: float) -> None:
        """While a backlog from below is being applied, the archive trails it (one batch every
        TRAIL seconds at least) and catches up after: applying comes first on a busy centre."""
        while (
            self.receiver is not None and self.receiver.taking() and time.monotonic() - last < TRAIL
        ):
            await asyncio.sleep(0.2)

    async def session(self, nc: Connection) -> None:
        await nc.ensure_stream(ARCHIVE)
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
                    nc, ARCHIVE, self.outbox.subject("env", origin)
                )
                self.outbox.sent_cp[origin] = await last_seq(
                    nc, ARCHIVE, self.outbox.subject("cp", origin)
                )
            if not new:
                await self.outbox.publish(nc, batch)


async def last_seq(nc: Connection, stream: str, subject: str) -> int:
    """The sequence (or checkpoint size) of the last message on a subject, from its id."""
    msg_id = await nc.last_id(stream, subject)
    return position_of(msg_id) if msg_id else 0
