"""One long-running federation task (``Part``): connect, run a session, and on any transport
failure start again, forever; and what every part shares (timings, acknowledging)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from domain.errors import DomainError
from federation.errors import VerificationError
from federation.jetstream import NATSTransport
from federation.transport import (
    Connection,
    Credentials,
    Delivery,
    Refused,
    Transport,
    TransportError,
    kind_of,
)
from node.keys import credentials
from node.service import Node

log = logging.getLogger("anjian.federation")
T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]  # runs a storage function in the right thread

IDLE = 0.2  # seconds between looks at the log when there is nothing to publish
RETRY = (0.25, 0.5, 1.0)  # seconds between connection attempts (the last repeats): a line
# back in service is used within a second, and a connection attempt costs next to nothing
AFTER_FAULT = 2.0  # seconds before starting again after an error that is not the connection's
AFTER_REFUSAL = 2.0  # seconds before trying again when the server refused this node
TRAIL = 5.0  # seconds projections and the archive may trail a backlog being applied
ACK_WAIT = 10.0  # seconds before a message delivered but not acknowledged is delivered again


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Part:
    """One long-running federation task: connects, runs a session, and on any transport
    failure closes the connection and starts again, forever, logging what it waits for."""

    name = "federation"

    def __init__(
        self, node: Node, url: str, read: Call, write: Call, transport: Transport | None = None
    ) -> None:
        self.node, self.url, self.read, self.write = node, url, read, write
        self.transport = transport or NATSTransport()
        self.connected = False
        self.last_error: str | None = None

    def credentials(self) -> Credentials:
        """How this node presents itself (read at each attempt: a NATS key made or certified
        meanwhile is used at once)."""
        return credentials(self.node.config)

    async def run(self) -> None:
        attempt = 0
        refused: str | None = None
        while True:
            try:
                nc = await self.transport.connect(
                    self.url,
                    f"anjian {self.node.config.node.origin} {self.name}",
                    self.credentials(),
                )
            except (Refused, DomainError) as e:  # refused, or this node's NATS key unusable
                if describe(e) != refused:  # each new reason once, not every attempt
                    log.error("%s: %s at %s; trying again", self.name, describe(e), self.url)
                refused = self.last_error = describe(e)
                await asyncio.sleep(AFTER_REFUSAL)
                attempt += 1
                continue
            except TransportError as e:
                if attempt == 0:
                    log.warning(
                        "%s: NATS at %s is not reachable (%s); the node works offline and "
                        "keeps trying",
                        self.name,
                        self.url,
                        describe(e),
                    )
                self.last_error = describe(e)
                await asyncio.sleep(RETRY[min(attempt, len(RETRY) - 1)])
                attempt += 1
                continue
            attempt, refused = 0, None
            self.connected = True
            log.info("%s: connected to %s", self.name, self.url)
            try:
                await self.session(nc)
            except Refused as e:  # a permission this node lacks: said, and tried again later
                self.last_error = describe(e)
                log.error("%s: %s; trying again in %ss", self.name, e, AFTER_REFUSAL)
                await asyncio.sleep(AFTER_REFUSAL)
            except TransportError as e:
                self.last_error = describe(e)
                log.warning("%s: connection to %s lost (%s); reconnecting", self.name, self.url, e)
            except VerificationError as e:  # e.g. no trust chain installed yet
                self.last_error = str(e)
                log.error("%s: %s; trying again in %ss", self.name, e, AFTER_FAULT)
                await asyncio.sleep(AFTER_FAULT)
            except Exception as e:  # a fault of ours: logged in full, the node keeps serving
                self.last_error = describe(e)
                log.exception("%s stopped; starting again in %ss", self.name, AFTER_FAULT)
                await asyncio.sleep(AFTER_FAULT)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await nc.close()
            await asyncio.sleep(RETRY[0])

    async def session(self, nc: Connection) -> None:
        raise NotImplementedError

    def busy(self) -> bool:
        """Whether this part is taking in a backlog (the views trail it meanwhile)."""
        return False


async def ack(msgs: list[Delivery]) -> None:
    """Acknowledge each message once what it carried is durably kept. (Not AckPolicy.ALL:
    acknowledging the last of a batch would also settle messages that were delivered to a
    receiver killed before it kept them, and they would never be delivered again.)"""
    for m in msgs:
        await m.ack()


def item(subject: str, data: bytes) -> tuple[str, bytes]:
    kind, _ = kind_of(subject)
    return (kind or f"message on {subject}", data)


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
