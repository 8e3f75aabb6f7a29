"""Monitoring-system file drops (docs/domain.md §4.3 b): the networking files a coal-mine safety
monitoring system (煤矿安全监控系统) writes into a directory,
``{矿井编码}_{TYPE}_{yyyyMMddHHmmss}.txt``.

Every few seconds the source takes the finished ``*.txt`` files, oldest first: CDDY point
definitions go to the sink as ``PointDefinition``s, CDSS real-time values as one ``Batch`` per
file. A file is then moved aside: to ``done/`` once delivered, or to ``rejected/`` with
``NAME.txt.reason`` beside it when it cannot be read (nothing of it is delivered) or the node
refuses it. Fields are separated by ``;``, each record (the header first) ends with ``~`` and the
file with ``||``; times are China time (UTC+8); the text is UTF-8 or GBK."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.sensors.thresholds import SensorType
from hardware.base import Batch, Counters, PointDefinition, Reading, Sink, log
from hardware.errors import Malformed as Malformed  # re-exported: it was defined here
from hardware.errors import Refused

CHINA = timezone(timedelta(hours=8), "CST")  # no daylight saving since 1991
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = {
    "CDDY": "point definitions",
    "CDSS": "real-time values",
    "FZDY": "outstation definitions",
    "YCBJ": "abnormality alarms",
    "TJSJ": "statistics",
}
# 传感器类型 codes of docs/domain.md §4.3 that the domain knows; other codes are skipped.
SENSOR_TYPES = {
    "0001": SensorType.METHANE,  # 环境瓦斯
    "0043": SensorType.METHANE,  # 激光甲烷
    "0004": SensorType.CO,
    "0012": SensorType.O2,
    "0013": SensorType.CO2,
}
LOWER_LIMITS = {SensorType.O2}  # dangerous when low: the 下限 columns hold their thresholds
CDSS_FIELDS = ("测点编码", "传感器类型名称", "安装位置", "监测值", "单位", "测点状态", "数据时间")
CDDY_FIELDS = (
    "测点编码", "系统编码", "分站编码", "传感器类型", "数值类型", "单位", "高量程", "低量程",
    "上限报警门限", "上限解报门限", "下限报警门限", "下限解报门限", "上限断电门限", "上限复电门限",
    "下限断电门限", "下限复电门限", "开描述", "关描述", "安装位置", "X", "Y", "Z", "关联关系",
    "数据时间",
)  # fmt: skip
UPPER = {"alarm": "上限报警门限", "power_cut": "上限断电门限", "restore": "上限复电门限"}
LOWER = {"alarm": "下限报警门限", "power_cut": "下限断电门限", "restore": "下限复电门限"}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
BATCH = 5000  # readings handed to the node at a time


# -- reading a file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileName:
    mine: str  # 矿井编码
    kind: str  # CDDY, CDSS, ...
    stamp: str  # yyyyMMddHHmmss, China time

    @classmethod
    def parse(cls, name: str) -> FileName:
        parts = name[:-4].rsplit("_", 2) if name.lower().endswith(".txt") else []
        if len(parts) != 3 or not parts[0] or not re.fullmatch(r"\d{14}", parts[2]):
            raise Malformed(
                f"the name is not {{矿井编码}}_{{TYPE}}_{{yyyyMMddHHmmss}}.txt: {name!r}"
            )
        mine, kind, stamp = parts
        if kind not in KINDS:
            raise Malformed(f"unknown file type {kind!r} in the name (known: {', '.join(KINDS)})")
        try:
            datetime.strptime(stamp, "%Y%m%d%H%M%S")
        except ValueError:
            raise Malformed(
                f"the time in the name {stamp!r} is not a time yyyyMMddHHmmss"
            ) from None
        return cls(mine, kind, stamp)


@dataclass(frozen=True)
class Definitions:
    """A CDDY file: the analog points the domain can take, and the points left out and why."""

    mine: str
    points: tuple[PointDefinition, ...]
    left_out: dict[str, str]  # point → why: "not an analog point (KG)", a type code unknown


@dataclass(frozen=True)
class Values:
    """A CDSS file: its readings, without those of points known not to be analog."""

    mine: str
    readings: tuple[Reading, ...]
    left_out: int  # records of points not analog


@dataclass(frozen=True)
class NotInterpreted:
    """FZDY, YCBJ, TJSJ: well-named files the node has no use for."""

    mine: str
    kind: str


Parsed = Definitions | Values | NotInterpreted


def parse(name: str, data: bytes, not_analog: Set[str] = frozenset()) -> Parsed:
    """Read one file, all of it or nothing: Malformed names the record and field at fault.
    CDSS records of the points in ``not_analog`` (switch points, unknown sensor types, as a
    CDDY file defined them) are left out unchecked but for their field count."""
    fn = FileName.parse(name)
    if fn.kind not in ("CDDY", "CDSS"):
        return NotInterpreted(fn.mine, fn.kind)
    header, *records = _records(_decode(data))
    if len(header) < 2:
        raise Malformed("header: 1 field, a header has at least 矿井编码;...;数据时间")
    if header[0] != fn.mine:
        raise Malformed(f"header: 矿井编码 {header[0]!r} differs from the file name's {fn.mine!r}")
    _time(header[-1], f"header, field {len(header)} 数据时间")
    if fn.kind == "CDSS":
        return _values(fn.mine, records, not_analog)
    return _definitions(fn.mine, records)


def _decode(data: bytes) -> str:
    if not data.strip():
        raise Malformed("the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # GBK and its superset
    except UnicodeDecodeError as e:
        raise Malformed(f"the text is neither UTF-8 nor GBK (byte {e.start})") from None


def _records(text: str) -> list[list[str]]:
    body = text.strip()
    if not body.endswith("||"):
        if "||" in body:
            raise Malformed("the file goes on after its end mark '||'")
        raise Malformed("the file does not end with '||': it is cut short")
    *records, rest = body[:-2].split("~")
    if rest.strip():
        which = f"record {len(records)}" if records else "the header"
        raise Malformed(f"{which} is not ended by '~' before '||'")
    if not records:
        raise Malformed("no header: the file holds only '||'")
    out = []
    for r in records:
        fields = [f.strip() for f in r.split(";")]
        out.append(fields[:-1] if len(fields) > 1 and fields[-1] == "" else fields)
    return out  # a trailing ';' before '~' (as some systems write) is not a field


def _fields(record: list[str], i: int, names: tuple[str, ...], kind: str) -> dict[str, str]:
    if len(record) != len(names):
        raise Malformed(
            f"record {i}: {len(record)} fields, a {kind} record has {len(names)}"
            f" ({';'.join(names)})"
        )
    return dict(zip(names, record, strict=True))


def _where(i: int, names: tuple[str, ...], name: str) -> str:
    return f"record {i}, field {names.index(name) + 1} {name}"


def _time(text: str, where: str) -> int:
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        raise Malformed(f"{where}: {text!r} is not a time yyyy-MM-dd HH:mm:ss") from None
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _number(text: str, where: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise Malformed(f"{where}: {text!r} is not a number")
    return Decimal(text)


def _point(text: str, where: str) -> str:
    if not text:
        raise Malformed(f"{where}: empty")
    return text


def _values(mine: str, records: list[list[str]], not_analog: Set[str]) -> Values:
    readings, left_out = [], 0
    for i, record in enumerate(records, 1):
        f = _fields(record, i, CDSS_FIELDS, "CDSS")
        point = _point(f["测点编码"], _where(i, CDSS_FIELDS, "测点编码"))
        if point in not_analog:
            left_out += 1
            continue
        status = f["测点状态"]
        if not status.isdigit() or int(status) > 255:
            raise Malformed(
                f"{_where(i, CDSS_FIELDS, '测点状态')}: {status!r} is not a status 0-255"
            )
        readings.append(
            Reading(
                point,
                _time(f["数据时间"], _where(i, CDSS_FIELDS, "数据时间")),
                _number(f["监测值"], _where(i, CDSS_FIELDS, "监测值")),
                int(status),
            )
        )
    return Values(mine, tuple(readings), left_out)


def _definitions(mine: str, records: list[list[str]]) -> Definitions:
    points, left_out = [], {}
    for i, record in enumerate(records, 1):
        f = _fields(record, i, CDDY_FIELDS, "CDDY")
        point = _point(f["测点编码"], _where(i, CDDY_FIELDS, "测点编码"))
        _time(f["数据时间"], _where(i, CDDY_FIELDS, "数据时间"))
        code = f["传感器类型"]
        code = code.zfill(4) if code.isdigit() else code
        sensor = SENSOR_TYPES.get(code)
        if f["数值类型"].upper() != "MN":
            left_out[point] = f"not an analog point ({f['数值类型'] or 'no 数值类型'})"
            continue
        if sensor is None:
            left_out[point] = f"sensor type code {code!r} is not one the node takes"
            continue
        # One direction per point, as the domain holds: upper limits, or lower ones for O2.
        # 解报 (alarm clear) levels have no place: the domain clears below the alarm level.
        lower = sensor in LOWER_LIMITS
        columns = LOWER if lower else UPPER
        thresholds: dict[str, Any] = {
            k: str(_number(f[c], _where(i, CDDY_FIELDS, c))) for k, c in columns.items() if f[c]
        }
        if thresholds and lower:
            thresholds["lower"] = True
        points.append(
            PointDefinition(point, sensor.value, f["安装位置"] or None, thresholds or None)
        )
    return Definitions(mine, tuple(points), left_out)


# -- the source -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileDropConfig:
    directory: Path
    interval: float = 2.0  # seconds between looks
    sites: dict[str, str] = field(default_factory=dict)  # 矿井编码 → site code, when they differ
    settle: float = 1.0  # a file modified more recently is still being written


class FileDropSource:
    """Takes the files dropped in ``config.directory`` (see the module's text)."""

    def __init__(self, config: FileDropConfig) -> None:
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
                self.counters.failed(f"{self.name}: {e}")
            await asyncio.sleep(self.config.interval)

    async def scan_once(self, sink: Sink) -> int:
        """Take every finished file once, oldest first; the number of files moved aside. A
        sink that fails (not a refusal: the node is down) leaves the file, and the files after
        it, for the next look."""
        if self._not_analog is None:
            self._not_analog = await asyncio.to_thread(self._learn_from_done)
        ready = await asyncio.to_thread(self._finished)
        self.counters.connected = True  # the directory is there and readable
        moved = 0
        for path in ready:
            try:
                await self._take(path, sink)
            except Exception as e:
                self.counters.failed(f"{self.name}: {path.name}: not delivered, will retry: {e!r}")
                break
            self._looks.pop(path.name, None)  # a file of the same name later is a new file
            moved += 1
        return moved

    def _finished(self) -> list[Path]:
        """The files ready to take: modified at least ``settle`` seconds ago and the same size
        and time as at the previous look (a writer that keeps the file's time while writing)."""
        now, looks, ready = time.time(), {}, []
        with os.scandir(self.config.directory) as entries:
            for e in entries:
                if e.name.startswith(".") or not e.name.lower().endswith(".txt"):
                    continue
                if not e.is_file():
                    continue
                st = e.stat()
                looks[e.name] = look = (st.st_size, st.st_mtime_ns)
                if now - st.st_mtime < self.config.settle:
                    continue
                if self._looks.get(e.name, look) != look:
                    continue
                ready.append((_order(e.name, st.st_mtime_ns), Path(e.path)))
        self._looks = looks
        return [p for _, p in sorted(ready)]

    async def _take(self, path: Path, sink: Sink) -> None:
        # Exactly once: a file is moved only after its delivery succeeded. After a crash
        # between the two it is taken again, and that is harmless: the readings store keeps
        # one reading per point and time, and points already registered are left as they are.
        data = await asyncio.to_thread(path.read_bytes)
        assert self._not_analog is not None
        mine = _mine(path.name)
        skip = frozenset(self._not_analog.get(mine, ())) if mine else frozenset()
        try:
            parsed = await asyncio.to_thread(parse, path.name, data, skip)
        except Malformed as e:
            self.counters.error(f"{self.name}: {path.name}: {e}")
            return await self._move(path, "rejected", str(e))
        site = self.config.sites.get(parsed.mine, parsed.mine)
        if isinstance(parsed, NotInterpreted):
            # Moved to done/, not rejected/: the files are what the system is meant to send,
            # and the node derives its own alarms and statistics from the raw readings (and
            # has no outstations). rejected/ is for what an operator has to look at.
            log.info("%s: %s: %s not interpreted", self.name, path.name, KINDS[parsed.kind])
            self._count("files_not_interpreted")
            return await self._move(path, "done")
        if isinstance(parsed, Definitions):
            reason = await self._define(path.name, site, parsed, sink)
        else:
            reason = await self._deliver(path.name, site, parsed, sink)
        await self._move(path, "rejected" if reason else "done", reason)

    async def _define(self, name: str, site: str, d: Definitions, sink: Sink) -> str | None:
        assert self._not_analog is not None
        known = self._not_analog.setdefault(d.mine, set())
        known.difference_update(p.point for p in d.points)
        known.update(d.left_out)
        if d.left_out:
            self._count("points_skipped", len(d.left_out))
            log.info(
                "%s: %s: left out: %s",
                self.name,
                name,
                "; ".join(f"{p}: {why}" for p, why in d.left_out.items()),
            )
        if not d.points:
            return None
        try:
            result = await sink.points(site, list(d.points))
        except Refused as e:
            return self._refused(name, str(e))
        self._count("points_registered", len(result.get("registered", ())))
        refused: dict[str, str] = result.get("refused") or {}
        if refused:  # the others are registered; the file may come again once this is mended
            return self._refused(
                name, "; ".join(f"point {p}: {why}" for p, why in sorted(refused.items()))
            )
        return None

    async def _deliver(self, name: str, site: str, v: Values, sink: Sink) -> str | None:
        if v.left_out:
            self._count("readings_skipped", v.left_out)
        if not v.readings:
            log.info("%s: %s: no readings of analog points", self.name, name)
            return None
        try:
            await self._send(sink, Batch(site, v.readings, f"file {name}"))
        except Refused as e:
            whole = str(e)
        else:
            return None
        # The node stored nothing of the file. Its points are offered again one by one, so
        # that one misconfigured point (a sensor not yet defined) does not cost the mine's
        # other readings their alarms; the file still goes to rejected/ to be mended and
        # dropped again, which takes again only what was refused (the store deduplicates).
        taken = []
        points = sorted({r.point for r in v.readings})
        for point in points if len(points) > 1 else ():
            one = tuple(r for r in v.readings if r.point == point)
            try:
                await self._send(sink, Batch(site, one, f"file {name} point {point}"))
            except Refused:
                continue
            taken.append(point)
        reason = self._refused(name, whole)
        if taken:
            reason += f" (the readings of the other points were taken: {', '.join(taken)})"
        return reason

    async def _send(self, sink: Sink, batch: Batch) -> None:
        """In batches of at most BATCH readings (a node takes 10,000 a batch by default)."""
        for i in range(0, len(batch.readings), BATCH):
            part = Batch(batch.site, batch.readings[i : i + BATCH], batch.origin)
            result = await sink.readings(part)
            self.counters.batches += 1
            self.counters.readings += len(part.readings)
            if result.get("events"):
                log.info("%s: %s: %s", self.name, batch.origin, ", ".join(result["events"]))

    def _refused(self, name: str, reason: str) -> str:
        self.counters.error(f"{self.name}: {name}: refused: {reason}", "refused")
        return f"refused by the node: {reason}"

    async def _move(self, path: Path, folder: str, reason: str | None = None) -> None:
        await asyncio.to_thread(_move, path, path.parent / folder, reason)
        self._count(f"files_{folder}")

    def _count(self, what: str, n: int = 1) -> None:
        self.counters.count(what, n)

    def _learn_from_done(self) -> dict[str, set[str]]:
        """The points the newest CDDY file of each mine taken before (done/, or rejected/ when
        the node refused some of its points) left out, so that after a restart their CDSS
        readings (which the node would refuse) are not sent before the next CDDY file."""
        newest: dict[str, tuple[str, Path]] = {}
        folders = [self.config.directory / f for f in ("done", "rejected")]
        for p in (p for f in folders if f.is_dir() for p in f.glob("*_CDDY_*.txt")):
            try:
                fn = FileName.parse(p.name)
            except Malformed:
                continue
            newest[fn.mine] = max(newest.get(fn.mine, ("", p)), (fn.stamp, p))
        learned = {}
        for mine, (_, p) in newest.items():
            try:
                parsed = parse(p.name, p.read_bytes())
            except (Malformed, OSError):
                continue
            if isinstance(parsed, Definitions):
                learned[mine] = set(parsed.left_out)
        return learned


def _mine(name: str) -> str | None:
    try:
        return FileName.parse(name).mine
    except Malformed:
        return None


def _order(name: str, mtime_ns: int) -> tuple[str, int, int, str]:
    """Oldest first by the time in the name; definitions before values of the same time."""
    try:
        fn = FileName.parse(name)
    except Malformed:
        return ("", 0, mtime_ns, name)  # rejected first, whatever their age
    return (fn.stamp, 0 if fn.kind == "CDDY" else 1, mtime_ns, name)


def _move(path: Path, folder: Path, reason: str | None) -> None:
    folder.mkdir(exist_ok=True)
    if reason is not None:
        (folder / f"{path.name}.reason").write_text(reason + "\n", encoding="utf-8")
    os.replace(path, folder / path.name)
