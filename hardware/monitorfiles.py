"""The networking files (联网数据) a coal-mine safety monitoring system writes
(docs/domain.md §4.3 b), ``{矿井编码}_{TYPE}_{yyyyMMddHHmmss}.txt``, read streaming.

Fields are separated by ``;``, each record (the header first) ends with ``~`` and the file with
``||``; times are China time (UTC+8); the text is UTF-8 or GBK. A file is read in chunks, as
often as needed, from a function that gives its bytes anew (``Chunks``): ``NetworkingFile.check``
reads it whole once and names the first thing wrong (``Malformed``), and only then are its
items taken, record by record (``NetworkingFile.items``), so that nothing of a bad file is
delivered and memory does not grow with the file: one chunk and one record at a time.

A message never holds more of a file than a short excerpt (``excerpt``, ``clean``): non-printable
characters escaped, at most a few dozen characters. Messages are ``domain.i18n.Text``s; the
format's own words (矿井编码, 测点状态, the field names) stay as the format names them."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import Any

from domain.i18n import N_, Joined, Text, _
from domain.sensors.thresholds import SensorType
from hardware.base import PointDefinition, Reading
from hardware.errors import Malformed

CHINA = timezone(timedelta(hours=8), "CST")  # no daylight saving since 1991
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = {  # what each file type holds, for a log line (read with domain.i18n.gettext)
    "CDDY": N_("point definitions"),
    "CDSS": N_("real-time values"),
    "FZDY": N_("outstation definitions"),
    "YCBJ": N_("abnormality alarms"),
    "TJSJ": N_("statistics"),
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
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)

CHUNK = 64 * 1024  # bytes read at a time
MAX_RECORD = 16 * 1024  # characters of one record (a CDDY record has about 200)
MAX_POINTS = 65_536  # point definitions in one CDDY file (a mine's system has a few thousand)
EXCERPT = 40  # characters of a file's content a message may quote

Chunks = Callable[[], Iterable[bytes]]  # the file's bytes, from the start, each time it is called


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """``text`` quoted for a message: its first ``limit`` characters, anything not printable
    escaped (control characters, bidirectional overrides, undecodable bytes), '…' if cut."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def clean(text: str, limit: int = 200) -> str:
    """``text`` as it is (unquoted) but with anything not printable escaped, cut at ``limit``."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def listed(items: Iterable[str | Text], most: int = 10) -> Text:
    """The first ``most`` of ``items`` for a message (text cleaned and cut short, Texts as
    they are), and how many more."""
    items = list(items)
    shown = Joined(i if isinstance(i, Text) else clean(i, EXCERPT) for i in items[:most])
    if len(items) > most:
        return _("{items} and {more} more", items=shown, more=len(items) - most)
    return shown


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
                _(
                    "the name is not {{矿井编码}}_{{TYPE}}_{{yyyyMMddHHmmss}}.txt: {name}",
                    name=excerpt(name, 80),
                )
            )
        mine, kind, stamp = parts
        if kind not in KINDS:
            raise Malformed(
                _(
                    "unknown file type {kind} in the name (known: {known})",
                    kind=excerpt(kind),
                    known=", ".join(KINDS),
                )
            )
        try:
            datetime.strptime(stamp, "%Y%m%d%H%M%S")
        except ValueError:
            raise Malformed(
                _("the time in the name {stamp!r} is not a time yyyyMMddHHmmss", stamp=stamp)
            ) from None
        return cls(mine, kind, stamp)


@dataclass(frozen=True)
class LeftOut:
    """A CDDY point the domain cannot take, and why."""

    point: str
    why: Text  # "not an analog point (KG)", a type code unknown


Item = Reading | PointDefinition | LeftOut | None  # None: a CDSS record of a point not analog


class NetworkingFile:
    """One file: its name (``Malformed`` when it is not one), then ``check`` and ``items``.
    CDSS records of the points in ``not_analog`` (switch points, unknown sensor types, as a
    CDDY file defined them) are left out unchecked but for their field count."""

    def __init__(self, name: str, chunks: Chunks, not_analog: Set[str] = frozenset()) -> None:
        self.name = FileName.parse(name)
        self.chunks = chunks
        self.not_analog = not_analog
        self.encoding = "utf-8-sig"

    @property
    def interpreted(self) -> bool:
        """CDDY and CDSS; the other kinds are well-named files the node has no use for."""
        return self.name.kind in ("CDDY", "CDSS")

    def check(self) -> None:
        """Read the whole file once; ``Malformed`` names the first thing wrong, in this order:
        empty, neither UTF-8 nor GBK, how it ends, the header, then the first record at fault."""
        for encoding in ("utf-8-sig", "gb18030"):  # GB 18030 is GBK's superset
            try:
                self._check(encoding)
            except _Undecodable as e:
                if encoding == "gb18030":
                    raise Malformed(
                        _("the text is neither UTF-8 nor GBK (byte {at})", at=e.at)
                    ) from None
                continue
            self.encoding = encoding
            return

    def items(self) -> Iterator[Item]:
        """Each record's item in order (after ``check``: a file changed since raises
        ``Malformed``)."""
        try:
            yield from self._items(_pieces(self.chunks(), self.encoding))
        except _Undecodable as e:
            raise Malformed(
                _("the text is not {encoding} at byte {at}", encoding=self.encoding, at=e.at)
            ) from None

    def _check(self, encoding: str) -> None:
        pieces = _pieces(self.chunks(), encoding)
        try:
            for _item in self._items(pieces):
                pass
        except Malformed as first:
            for _piece in pieces:  # how the file ends is named before a record at fault
                pass
            raise first

    def _items(self, pieces: Iterator[str]) -> Iterator[Item]:
        header = _fields(next(pieces))  # no header: _pieces says so
        if len(header) < 2:
            raise Malformed(_("header: 1 field, a header has at least 矿井编码;...;数据时间"))
        if header[0] != self.name.mine:
            raise Malformed(
                _(
                    "header: 矿井编码 {found} differs from the file name's {expected}",
                    found=excerpt(header[0]),
                    expected=excerpt(self.name.mine),
                )
            )
        _time(header[-1], _("header, field {field} 数据时间", field=len(header)))
        if self.name.kind == "CDSS":
            for i, piece in enumerate(pieces, 1):
                yield self._reading(i, _fields(piece))
        elif self.name.kind == "CDDY":
            for i, piece in enumerate(pieces, 1):
                if i > MAX_POINTS:
                    raise Malformed(
                        _("more than {most} point definitions in one file", most=MAX_POINTS)
                    )
                yield _definition(i, _fields(piece))
        else:
            for _piece in pieces:
                pass

    def _reading(self, i: int, record: list[str]) -> Reading | None:
        f = _named(record, i, CDSS_FIELDS, "CDSS")
        point = _point(f["测点编码"], _where(i, CDSS_FIELDS, "测点编码"))
        if point in self.not_analog:
            return None
        status = f["测点状态"]
        if not (status.isascii() and status.isdigit() and len(status) <= 3) or int(status) > 255:
            raise Malformed(
                _(
                    "{where}: {status} is not a status 0-255",
                    where=_where(i, CDSS_FIELDS, "测点状态"),
                    status=excerpt(status),
                )
            )
        return Reading(
            point,
            _time(f["数据时间"], _where(i, CDSS_FIELDS, "数据时间")),
            _number(f["监测值"], _where(i, CDSS_FIELDS, "监测值")),
            int(status),
        )


class _Undecodable(Exception):
    def __init__(self, at: int) -> None:
        self.at = at  # the byte of the file where decoding failed


def _pieces(chunks: Iterable[bytes], encoding: str) -> Iterator[str]:
    """The text between the ``~``s (the header first), then the checks of how the file ends:
    one chunk and one unfinished record in memory at a time."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, carry, count, content, end_mark = 0, "", 0, False, False
    for data, final in chain(((c, False) for c in chunks), [(b"", True)]):
        content = content or bool(data.strip())
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final=final)
        except UnicodeDecodeError as e:
            raise _Undecodable(offset - pending + e.start) from None
        offset += len(data)
        parts = (carry + text).split("~")
        carry = parts.pop()
        for piece in parts:
            _bounded(piece, count)
            end_mark = end_mark or "||" in piece
            yield piece
            count += 1
        _bounded(carry, count)  # an unfinished record is not held past the bound either
    if not content:
        raise Malformed(_("the file is empty"))
    tail = carry.strip()  # what follows the last '~': the end mark, and only it
    if not tail.endswith("||"):
        if end_mark or "||" in tail:
            raise Malformed(_("the file goes on after its end mark '||'"))
        raise Malformed(_("the file does not end with '||': it is cut short"))
    if tail[:-2].strip():
        raise Malformed(_("{which} is not ended by '~' before '||'", which=_record(count)))
    if not count:
        raise Malformed(_("no header: the file holds only '||'"))


def _record(i: int) -> Text:
    """Record ``i`` of a file, 0 being its header."""
    return _("record {record}", record=i) if i else _("the header")


def _bounded(record: str, i: int) -> None:
    if len(record) > MAX_RECORD:
        raise Malformed(
            _("{which} is longer than {most} characters", which=_record(i), most=MAX_RECORD)
        )


def _fields(record: str) -> list[str]:
    fields = [f.strip() for f in record.split(";")]
    return fields[:-1] if len(fields) > 1 and fields[-1] == "" else fields
    # a trailing ';' before '~' (as some systems write) is not a field


def _named(record: list[str], i: int, names: tuple[str, ...], kind: str) -> dict[str, str]:
    if len(record) != len(names):
        raise Malformed(
            _(
                "record {record}: {count} fields, a {kind} record has {expected} ({names})",
                record=i,
                count=len(record),
                kind=kind,
                expected=len(names),
                names=";".join(names),
            )
        )
    return dict(zip(names, record, strict=True))


def _where(i: int, names: tuple[str, ...], name: str) -> Text:
    return _(
        "record {record}, field {field} {name}",
        record=i,
        field=names.index(name) + 1,
        name=name,
    )


@lru_cache(maxsize=4096)  # a CDSS file's records mostly share a few times
def _moment(text: str) -> int | None:
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return None
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _time(text: str, where: Text) -> int:
    ms = _moment(text) if len(text) <= 19 else None
    if ms is None:
        raise Malformed(
            _(
                "{where}: {text} is not a time yyyy-MM-dd HH:mm:ss",
                where=where,
                text=excerpt(text),
            )
        )
    return ms


def _number(text: str, where: Text) -> Decimal:
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        raise Malformed(_("{where}: {text} is not a number", where=where, text=excerpt(text)))
    return Decimal(text)


def _point(text: str, where: Text) -> str:
    if not text:
        raise Malformed(_("{where}: empty", where=where))
    return text


def _definition(i: int, record: list[str]) -> PointDefinition | LeftOut:
    f = _named(record, i, CDDY_FIELDS, "CDDY")
    point = _point(f["测点编码"], _where(i, CDDY_FIELDS, "测点编码"))
    _time(f["数据时间"], _where(i, CDDY_FIELDS, "数据时间"))
    code = f["传感器类型"]
    code = code.zfill(4) if code.isdigit() else code
    sensor = SENSOR_TYPES.get(code)
    if f["数值类型"].upper() != "MN":
        kind = clean(f["数值类型"], 8) or _("no 数值类型")
        return LeftOut(point, _("not an analog point ({kind})", kind=kind))
    if sensor is None:
        return LeftOut(
            point,
            _("sensor type code {code} is not one the node takes", code=excerpt(code, 8)),
        )
    # One direction per point, as the domain holds: upper limits, or lower ones for O2.
    # 解报 (alarm clear) levels have no place: the domain clears below the alarm level.
    lower = sensor in LOWER_LIMITS
    columns = LOWER if lower else UPPER
    thresholds: dict[str, Any] = {
        k: str(_number(f[c], _where(i, CDDY_FIELDS, c))) for k, c in columns.items() if f[c]
    }
    if thresholds and lower:
        thresholds["lower"] = True
    return PointDefinition(point, sensor.value, f["安装位置"] or None, thresholds or None)


# -- a whole file in memory (small files, tests) ------------------------------------------------


@dataclass(frozen=True)
class Definitions:
    """A CDDY file: the analog points the domain can take, and the points left out and why."""

    mine: str
    points: tuple[PointDefinition, ...]
    left_out: dict[str, Text]  # point → why: "not an analog point (KG)", a type code unknown


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


def in_chunks(data: bytes) -> Chunks:
    return lambda: (data[i : i + CHUNK] for i in range(0, len(data), CHUNK))


def parse(name: str, data: bytes, not_analog: Set[str] = frozenset()) -> Parsed:
    """Read one file held in memory, all of it or nothing: Malformed names the record and field
    at fault (see ``NetworkingFile``)."""
    file = NetworkingFile(name, in_chunks(data), not_analog)
    mine = file.name.mine
    if not file.interpreted:
        return NotInterpreted(mine, file.name.kind)
    file.check()
    items = list(file.items())
    if file.name.kind == "CDSS":
        readings = tuple(r for r in items if isinstance(r, Reading))
        return Values(mine, readings, len(items) - len(readings))
    points = tuple(p for p in items if isinstance(p, PointDefinition))
    return Definitions(mine, points, {x.point: x.why for x in items if isinstance(x, LeftOut)})
