"""Monitoring-system file drops (docs/domain.md §4.3 b): the networking files a coal-mine safety
monitoring system (煤矿安全监控系统) writes into a directory,
``{矿井编码}_{TYPE}_{yyyyMMddHHmmss}.txt`` (the format: hardware.monitorfiles).

Every few seconds the source takes the finished ``*.txt`` files, oldest first: CDDY point
definitions go to the sink as ``PointDefinition``s, CDSS real-time values as ``Batch``es of at
most ``BATCH`` readings. A file is then moved aside: to ``done/`` once delivered, or to
``rejected/`` with ``NAME.txt.reason`` beside it when it cannot be read (nothing of it is
delivered) or the node refuses it.

The folder is written by others, so it is handled as hostile (hardware.dropfolder): no
symbolic link is ever followed — a drop folder that is one is ``Misconfigured`` (at start, and
on any later look, which then takes nothing); a ``done/`` or ``rejected/`` that is one, or is
not a directory, stops the looks (reported, nothing taken or written) until it is mended; a
file that is a link, not a regular file, a hard link, or larger than ``max_file_bytes`` is
moved to ``rejected/`` with the reason, unread. A file is read streaming, twice: once whole to
check it (nothing of a bad file is delivered), then record by record as it is delivered, so
memory does not grow with its size. Messages quote a file only in short, escaped excerpts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from domain.i18n import Joined, Text, _
from hardware.base import Batch, Counters, PointDefinition, Reading, Sink, log
from hardware.dropfolder import DropFolder, Entry, OpenFile, check_folder
from hardware.errors import Malformed as Malformed  # re-exported: it was defined here
from hardware.errors import Misconfigured, Refused
from hardware.monitorfiles import (  # re-exported: they were defined here
    KINDS,
    MAX_POINTS,
    Definitions,
    FileName,
    Item,
    LeftOut,
    NetworkingFile,
    NotInterpreted,
    Values,
    clean,
    listed,
    parse,
)

__all__ = ["FileDropConfig", "FileDropSource", "Malformed", "prune_kept"]
__all__ += ["KINDS", "Definitions", "FileName", "NotInterpreted", "Values", "parse"]

BATCH = 5000  # readings (or point definitions) handed to the node at a time
MAX_FILE_BYTES = 16 * 1024 * 1024  # larger files are refused unread


@dataclass(frozen=True)
class FileDropConfig:
    directory: Path
    interval: float = 2.0  # seconds between looks
    sites: dict[str, str] = field(default_factory=dict)  # 矿井编码 → site code, when they differ
    settle: float = 1.0  # a file modified more recently is still being written
    max_file_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise Misconfigured(
                _(
                    "file drop {directory}: interval must be positive seconds",
                    directory=self.directory,
                )
            )
        if self.max_file_bytes < 1:
            raise Misconfigured(
                _(
                    "file drop {directory}: max_file_bytes must be positive",
                    directory=self.directory,
                )
            )


class FileDropSource:
    """Takes the files dropped in ``config.directory`` (see the module's text). ``Misconfigured``
    if the folder is a symbolic link."""

    def __init__(self, config: FileDropConfig) -> None:
        check_folder(config.directory)
        self.config = config
        self.name = f"file drop {config.directory}"
        self.counters = Counters()
        self._looks: dict[str, tuple[int, int]] = {}  # name → (size, mtime) at the last look
        self._not_analog: dict[str, set[str]] | None = None  # 矿井编码 → points, from CDDY files

    async def run(self, sink: Sink) -> None:
        while True:
            try:
                await self.scan_once(sink)
            except OSError as e:  # the directory is missing or unreadable: look again later
                self.counters.connected = False
                self.counters.failed(_("{source}: {problem}", source=self.name, problem=str(e)))
            await asyncio.sleep(self.config.interval)

    async def scan_once(self, sink: Sink) -> int:
        """Take every finished file once, oldest first; the number of files moved aside. A
        sink that fails (not a refusal: the node is down) leaves the file, and the files after
        it, for the next look. A folder that is a link takes nothing (reported)."""
        try:
            folder = await asyncio.to_thread(DropFolder, self.config.directory)
        except Misconfigured as e:
            return self._unsafe(e)
        try:
            return await self._look(folder, sink)
        except Misconfigured as e:  # done/ or rejected/ is a link, or not a directory
            return self._unsafe(e)
        finally:
            folder.close()  # closing descriptors does not block

    def _unsafe(self, e: Misconfigured) -> int:
        self.counters.connected = False
        what = _("{source}: {problem}", source=self.name, problem=e.text)
        if str(what) == self.counters.last_error:  # logged once, counted at every look
            self._count("failures")
        else:
            self.counters.failed(what)
        return 0

    async def _look(self, folder: DropFolder, sink: Sink) -> int:
        await asyncio.to_thread(folder.check_kept)
        if self._not_analog is None:
            self._not_analog = await asyncio.to_thread(self._learn, folder)
        ready = await asyncio.to_thread(self._finished, folder)
        self.counters.connected = True  # the directory is there and readable
        moved = 0
        for entry in ready:
            try:
                taken = await self._take(folder, entry, sink)
            except Misconfigured:
                raise
            except Exception as e:
                self.counters.failed(
                    _(
                        "{source}: {file}: not delivered, will retry: {error}",
                        source=self.name,
                        file=clean(entry.name),
                        error=repr(e),
                    )
                )
                break
            self._looks.pop(entry.name, None)  # a file of the same name later is a new file
            moved += taken
        return moved

    def _finished(self, folder: DropFolder) -> list[Entry]:
        """The entries to take: files modified at least ``settle`` seconds ago and the same size
        and time as at the previous look (a writer that keeps the file's time while writing);
        what is not a regular file at once (it is refused unread)."""
        now, looks, ready = time.time_ns(), {}, []
        for e in folder.entries():
            if e.refusal is None:
                looks[e.name] = look = (e.size, e.mtime_ns)
                if now - e.mtime_ns < self.config.settle * 1e9:
                    continue
                if self._looks.get(e.name, look) != look:
                    continue
            ready.append((_order(e), e))
        self._looks = looks
        return [e for _order_key, e in sorted(ready, key=lambda r: r[0])]

    async def _take(self, folder: DropFolder, entry: Entry, sink: Sink) -> int:
        """Deliver one file and move it aside: 1, or 0 when it is left for the next look.
        Exactly once: a file is moved only after its delivery succeeded. After a crash between
        the two it is taken again, and that is harmless: the readings store keeps one reading
        per point and time, and points already registered are left as they are."""
        name = entry.name
        if entry.refusal is not None:
            return await self._reject(folder, name, entry.refusal)
        try:
            opened = await asyncio.to_thread(folder.open, name, self.config.max_file_bytes)
        except Malformed as e:
            return await self._reject(folder, name, e.text)
        except FileNotFoundError:
            return 0  # gone since the look
        try:
            return await self._read(folder, name, opened, sink)
        finally:
            opened.close()

    async def _read(self, folder: DropFolder, name: str, opened: OpenFile, sink: Sink) -> int:
        assert self._not_analog is not None
        mine = _mine(name)
        skip = frozenset(self._not_analog.get(mine, ())) if mine else frozenset()
        try:
            file = NetworkingFile(name, opened.chunks, skip)
            if file.interpreted:
                await asyncio.to_thread(file.check)
        except Malformed as e:
            return await self._reject(folder, name, e.text)
        if not await asyncio.to_thread(opened.unchanged):
            return 0  # written again while it was checked: the next look takes it
        site = self.config.sites.get(file.name.mine, file.name.mine)
        if not file.interpreted:
            # Moved to done/, not rejected/: the files are what the system is meant to send,
            # and the node derives its own alarms and statistics from the raw readings (and
            # has no outstations). rejected/ is for what an operator has to look at.
            log.info(
                _(
                    "{source}: {file}: {kind} not interpreted",
                    source=self.name,
                    file=clean(name),
                    kind=Text(KINDS[file.name.kind], {}),
                )
            )
            self._count("files_not_interpreted")
            return await self._move(folder, name, "done")
        try:
            if file.name.kind == "CDDY":
                reason = await self._define(name, site, file, sink)
            else:
                reason = await self._deliver(name, site, file, sink)
        except Malformed as e:  # it passed the check, then changed: what was taken stays
            changed = _("the file changed while it was read: {problem}", problem=e.text)
            return await self._reject(folder, name, changed)
        return await self._move(folder, name, "rejected" if reason else "done", reason)

    async def _define(
        self, name: str, site: str, file: NetworkingFile, sink: Sink
    ) -> str | Text | None:
        assert self._not_analog is not None
        known = self._not_analog.setdefault(file.name.mine, set())
        items, left = file.items(), _LeftOut()
        registered, whole = 0, None  # whole: why the node refused the file's points at once
        refused: dict[str, str | Text] = {}
        while batch := await asyncio.to_thread(_next, items, BATCH, left):
            points = [p for p in batch if isinstance(p, PointDefinition)]
            known.difference_update(p.point for p in points)
            try:
                result = await sink.points(site, points)
            except Refused as e:
                whole = whole or e.reason
                continue
            registered += len(result.get("registered", ()))
            refused.update(result.get("refused") or {})
        known.update(left.points)
        if len(known) > MAX_POINTS:  # held in memory: the newest file's word then
            known.clear()
            known.update(left.points)
        if left.points:
            self._count("points_skipped", len(left.points))
            log.info(
                _(
                    "{source}: {file}: left out: {points}",
                    source=self.name,
                    file=clean(name),
                    points=listed(
                        _("{point}: {why}", point=clean(p, 40), why=why)
                        for p, why in left.points.items()
                    ),
                )
            )
        if registered:
            self._count("points_registered", registered)
        if whole is not None:
            return self._refused(name, whole)
        if refused:  # the others are registered; the file may come again once this is mended
            reasons: Text = Joined(
                (
                    _("point {point}: {reason}", point=clean(p, 40), reason=why)
                    for p, why in sorted(refused.items())[:10]
                ),
                en="; ",
                zh="；",
            )
            if len(refused) > 10:
                reasons = _(
                    "{reasons} (and {more} more points)", reasons=reasons, more=len(refused) - 10
                )
            return self._refused(name, reasons)
        return None

    async def _deliver(
        self, name: str, site: str, file: NetworkingFile, sink: Sink
    ) -> str | Text | None:
        """In batches of at most BATCH readings (a node takes 10,000 a batch by default). A
        batch the node refuses is offered again one point at a time, so that one misconfigured
        point (a sensor not yet defined) does not cost the mine's other readings their alarms;
        the file still goes to rejected/ to be mended and dropped again, which takes again only
        what was refused (the store deduplicates)."""
        items, left = file.items(), _LeftOut()
        whole: str | Text | None = None
        taken: set[str] = set()
        refused: set[str] = set()
        sent = 0
        while batch := await asyncio.to_thread(_next, items, BATCH, left):
            readings = tuple(r for r in batch if isinstance(r, Reading))
            sent += len(readings)
            origin = _("file {file}", file=clean(name))
            try:
                await self._send(sink, Batch(site, readings, origin))
            except Refused as e:
                whole = whole or e.reason
                points = sorted({r.point for r in readings})
                refused.update(points if len(points) == 1 else ())
                for point in points if len(points) > 1 else ():
                    one = tuple(r for r in readings if r.point == point)
                    origin = _(
                        "file {file} point {point}", file=clean(name), point=clean(point, 40)
                    )
                    try:
                        await self._send(sink, Batch(site, one, origin))
                    except Refused:
                        refused.add(point)
                        continue
                    taken.add(point)
        if left.readings:
            self._count("readings_skipped", left.readings)
        if not sent:
            log.info(
                _(
                    "{source}: {file}: no readings of analog points",
                    source=self.name,
                    file=clean(name),
                )
            )
        if whole is None:
            return None
        reason = self._refused(name, whole)
        if taken - refused:
            reason = _(
                "{reason} (the readings of the other points were taken: {points})",
                reason=reason,
                points=listed(sorted(taken - refused)),
            )
        return reason

    async def _send(self, sink: Sink, batch: Batch) -> None:
        result = await sink.readings(batch)
        self.counters.batches += 1
        self.counters.readings += len(batch.readings)
        if result.get("events"):
            log.info(
                _(
                    "{source}: {origin}: {events}",
                    source=self.name,
                    origin=batch.origin,
                    events=", ".join(result["events"]),  # event types: not translated
                )
            )

    def _refused(self, name: str, reason: str | Text) -> Text:
        """The node's reason, read now in the node's language (it quotes the file: cleaned)."""
        shown = clean(str(reason), 400)
        self.counters.error(
            _(
                "{source}: {file}: refused: {reason}",
                source=self.name,
                file=clean(name),
                reason=shown,
            ),
            "refused",
        )
        return _("refused by the node: {reason}", reason=shown)

    async def _reject(self, folder: DropFolder, name: str, reason: str | Text) -> int:
        self.counters.error(
            _("{source}: {file}: {reason}", source=self.name, file=clean(name), reason=reason)
        )
        return await self._move(folder, name, "rejected", reason)

    async def _move(
        self, folder: DropFolder, name: str, to: str, reason: str | Text | None = None
    ) -> int:
        await asyncio.to_thread(folder.move, name, to, reason)
        self._count(f"files_{to}")
        return 1

    def _count(self, what: str, n: int = 1) -> None:
        self.counters.count(what, n)

    def _learn(self, folder: DropFolder) -> dict[str, set[str]]:
        """The points the newest CDDY file of each mine taken before (done/, or rejected/ when
        the node refused some of its points) left out, so that after a restart their CDSS
        readings (which the node would refuse) are not sent before the next CDDY file."""
        newest: dict[str, tuple[str, str, str]] = {}
        for kept in ("done", "rejected"):
            for e in folder.entries(kept):
                try:
                    fn = FileName.parse(e.name)
                except Malformed:
                    continue
                if fn.kind == "CDDY" and e.refusal is None:
                    newest[fn.mine] = max(
                        newest.get(fn.mine, ("", "", "")), (fn.stamp, kept, e.name)
                    )
        learned = {}
        for mine, (_stamp, kept, name) in newest.items():
            try:
                opened = folder.open(name, self.config.max_file_bytes, kept)
            except (Malformed, OSError):
                continue
            try:
                file = NetworkingFile(name, opened.chunks)
                file.check()
                learned[mine] = {x.point for x in file.items() if isinstance(x, LeftOut)}
            except (Malformed, OSError):
                continue
            finally:
                opened.close()
        return learned


@dataclass
class _LeftOut:
    points: dict[str, Text] = field(default_factory=dict)  # CDDY: point → why
    readings: int = 0  # CDSS: records of points not analog


def _next(items: Iterator[Item], most: int, left_out: _LeftOut) -> list[Item]:
    """Up to ``most`` items to deliver (readings, point definitions); what is left out is
    noted in ``left_out``."""
    batch: list[Item] = []
    for item in items:
        if item is None:
            left_out.readings += 1
        elif isinstance(item, LeftOut):
            left_out.points[item.point] = item.why
        else:
            batch.append(item)
            if len(batch) >= most:
                break
    return batch


def prune_kept(directory: Path, before_ms: int) -> int:
    """Delete the files ``done/`` and ``rejected/`` of a drop folder hold that were last
    modified before ``before_ms`` (the readings' retention period); the number deleted. No
    link is followed: a link is deleted itself, and a ``done/`` or ``rejected/`` that is a link
    is ``Misconfigured`` (nothing deleted). A folder not there: 0."""
    try:
        folder = DropFolder(directory)
    except FileNotFoundError:
        return 0
    with folder:
        return folder.prune(before_ms * 1_000_000)


def _mine(name: str) -> str | None:
    try:
        return FileName.parse(name).mine
    except Malformed:
        return None


def _order(entry: Entry) -> tuple[str, int, int, str]:
    """Oldest first by the time in the name; definitions before values of the same time."""
    if entry.refusal is not None:
        return ("", 0, 0, entry.name)  # refused unread first
    try:
        fn = FileName.parse(entry.name)
    except Malformed:
        return ("", 0, entry.mtime_ns, entry.name)  # rejected first, whatever their age
    return (fn.stamp, 0 if fn.kind == "CDDY" else 1, entry.mtime_ns, entry.name)
