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
from domain.i18n import Text, _, render
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
        self._last_error: str | Text | None = None

    @property
    def last_error(self) -> str | None:
        """What last went wrong, read in its reader's language (an HTTP client's, for the
        status), or None."""
        return None if self._last_error is None else str(render(self._last_error))

    @last_error.setter
    def last_error(self, error: str | Text | None) -> None:
        self._last_error = error

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
                said = str(describe(e))
                if said != refused:  # each new reason once, not every attempt
                    log.error(
                        _(
                            "{part}: {error} at {url}; trying again",
                            part=self.name,
                            error=describe(e),
                            url=self.url,
                        )
                    )
                refused, self.last_error = said, describe(e)
                await asyncio.sleep(AFTER_REFUSAL)
                attempt += 1
                continue
            except TransportError as e:
                if attempt == 0:
                    log.warning(
                        _(
                            "{part}: NATS at {url} is not reachable ({error}); the node works"
                            " offline and keeps trying",
                            part=self.name,
                            url=self.url,
                            error=describe(e),
                        )
                    )
                self.last_error = describe(e)
                await asyncio.sleep(RETRY[min(attempt, len(RETRY) - 1)])
                attempt += 1
                continue
            attempt, refused = 0, None
            self.connected = True
            log.info(_("{part}: connected to {url}", part=self.name, url=self.url))
            try:
                await self.session(nc)
            except Refused as e:  # a permission this node lacks: said, and tried again later
                self.last_error = describe(e)
                log.error(
                    _(
                        "{part}: {error}; trying again in {seconds}s",
                        part=self.name,
                        error=describe(e),
                        seconds=AFTER_REFUSAL,
                    )
                )
                await asyncio.sleep(AFTER_REFUSAL)
            except TransportError as e:
                self.last_error = describe(e)
                log.warning(
                    _(
                        "{part}: connection to {url} lost ({error}); reconnecting",
                        part=self.name,
                        url=self.url,
                        error=describe(e),
                    )
                )
            except VerificationError as e:  # e.g. no trust chain installed yet
                self.last_error = describe(e)
                log.error(
                    _(
                        "{part}: {error}; trying again in {seconds}s",
                        part=self.name,
                        error=describe(e),
                        seconds=AFTER_FAULT,
                    )
                )
                await asyncio.sleep(AFTER_FAULT)
            except Exception as e:  # a fault of ours: logged in full, the node keeps serving
                self.last_error = describe(e)
                log.exception(
                    _(
                        "{part} stopped; starting again in {seconds}s",
                        part=self.name,
                        seconds=AFTER_FAULT,
                    )
                )
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
    kind, _origin = kind_of(subject)
    return (kind or f"message on {subject}", data)


def describe(error: BaseException) -> str | Text:
    """What went wrong, for a person: the error's message, kept as the product's message
    where it is one (read later in its reader's language), else its kind."""
    said = str(error)
    message = error.args[0] if len(error.args) == 1 else None
    if isinstance(message, Text) and said == message.render():
        return message
    return said or type(error).__name__
