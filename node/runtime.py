"""What a serving node runs beside its interface: one writer thread and a few readers for the
store, the projections process, the federation parts and sensor sources its configuration
names, and the periodic work (checkpoints, users reloaded, sensor windows closed, retention)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from domain.errors import DomainError
from domain.i18n import _
from hardware.base import Source
from node.projector import follow_pass, projections_process
from node.replication.importer import Importer
from node.replication.part import TRAIL, Part
from node.service import Node
from node.users import User, read_table

log = logging.getLogger("anjian.runtime")
T = TypeVar("T")


class Runtime:
    """What the handlers share: the node, its threads, and the current users table."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="anjian-writer")
        self.readers = ThreadPoolExecutor(4, thread_name_prefix="anjian-reader")
        self.projector = projections_process(node.config)
        self.users_file: Path = node.config.users_file
        self.users: dict[str, User] = read_table(self.users_file)
        self.users_mtime = _mtime(self.users_file)
        self.importer = Importer(node)
        self.federation: list[Part] = []
        self.hardware: list[Source] = []

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in the writer thread, in the caller's context (its reader's language)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self.writer, partial(context.run, fn, *args, **kwargs)
        )

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in a reader thread, in the caller's context."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self.readers, partial(context.run, fn, *args, **kwargs)
        )

    async def watch_users(self, interval: float = 1.0) -> None:
        """Pick up `anjian users add/remove` without a restart."""
        while True:
            await asyncio.sleep(interval)
            mtime = await self.read(_mtime, self.users_file)
            if mtime != self.users_mtime:
                try:
                    self.users = await self.read(read_table, self.users_file)
                    self.users_mtime = mtime
                    log.info(_("users reloaded: {count} users", count=len(self.users)))
                except DomainError as e:
                    log.error(_("{error}; keeping the previous users", error=e))

    async def close_windows(self, interval: float = 30.0) -> None:
        """Derive every site now and then: readings a crash left pending, and summaries of
        windows that closed with no batch since."""
        while True:
            try:
                await self.write(self.node.derive_all)
            except DomainError as e:
                log.error(_("deriving sensor events: {error}", error=e))
            await asyncio.sleep(interval)

    async def follow_projections(self, interval: float = 0.25) -> None:
        """Keep the projections up to the log, in their own process. While a backlog from
        below is being applied, they trail it (a pass every TRAIL seconds at least) and catch up
        in large batches after: applying and relaying come first on a busy tier."""
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            while self.busy() and loop.time() - last < TRAIL:
                await asyncio.sleep(0.2)
            last = loop.time()
            try:
                applied = await loop.run_in_executor(self.projector, follow_pass)
            except BrokenProcessPool:  # the process died (killed, out of memory): a new one
                log.error(_("the projections process stopped; starting another"))
                self.projector.shutdown(wait=False)
                self.projector = projections_process(self.node.config)
                applied = 0
            except Exception as e:  # the node keeps serving; the projections retry next round
                if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                    # a rebuild being copied into their file holds it
                    log.warning(_("the projections wait for their file; they go on next round"))
                else:
                    log.exception(_("projections stopped at an event they could not apply"))
                applied = 0
            if not applied:
                await asyncio.sleep(interval)

    def busy(self) -> bool:
        """Whether this tier's receiver is taking in a backlog."""
        return any(p.busy() for p in self.federation)

    async def checkpoints(self, interval: float = 1.0) -> None:
        """Sign a checkpoint every second while the log grows (and at stop, in Node.close)."""
        while True:
            await asyncio.sleep(interval)
            await self.write(self.node.checkpoint)

    async def retention(self, interval: float = 3600.0) -> None:
        """Drop raw readings past their retention period, hourly (the log is never touched)."""
        while True:
            result = await self.write(self.node.prune_readings)
            if result["pruned"]:
                log.info(
                    _(
                        "pruned {count} raw readings older than {before}",
                        count=result["pruned"],
                        before=result["before"],
                    )
                )
            await asyncio.sleep(interval)

    def close(self) -> None:
        self.writer.shutdown(wait=True)
        self.readers.shutdown(wait=True)
        self.projector.shutdown(wait=True)
        self.node.close()


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None
