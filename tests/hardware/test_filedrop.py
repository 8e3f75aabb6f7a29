"""The file-drop adapter on real files: the source contract (tests/hardware/contract.py); CDSS
values and CDDY definitions to the sink, malformed and refused files to rejected/ with the
reason beside them, files still being written left alone, GBK text; and with a real node,
definitions registered, alarms derived, exactly once."""

import asyncio
import os
import time
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from blockbuster import blockbuster_ctx

from domain.base import to_ms
from hardware.filedrop import FileDropConfig, FileDropSource
from node.adapters import NodeSink
from tests.factories import NOW, SITE_CODE, js, site
from tests.hardware.contract import RecordingSink, SourceContract

MINE = "130102B0012"  # 矿井编码 (= the site code unless FileDropConfig.sites maps it)
NOW_MS = to_ms(NOW)  # 2026-11-29 08:00:00 UTC = 16:00:00 China time
HEADER = f"{MINE};某煤矿一号井;2026-11-29 15:59:40~\n"
CDSS = (
    HEADER
    + "CH4-01;甲烷;3201工作面上隅角;1.60;%CH4;3;2026-11-29 15:59:30~\n"
    + "CO-01;一氧化碳;3201回风巷;30;ppm;0;2026-11-29 15:59:30~\n"
    + "O2-01;氧气;3201回风巷;18.0;%;0;2026-11-29 15:59:30~\n"
    + "FS-01;风筒;3201掘进工作面;1;;0;2026-11-29 15:59:30~\n"
    + "||\n"
)
CDSS_NAME = f"{MINE}_CDSS_20261129155940.txt"
CDDY_NAME = f"{MINE}_CDDY_20261129155900.txt"


def cddy_record(point, code, kind="MN", upper=("", "", ""), lower=("", "", ""), place="3201"):
    alarm, cut, restore = upper
    low_alarm, low_cut, low_restore = lower
    fields = [point, "KJ1031X", "F01", code, kind, "", "4", "0", alarm, "", low_alarm, ""]
    fields += [cut, restore, low_cut, low_restore, "", "", place, "0", "0", "0", "", ""]
    fields[-1] = "2026-11-29 15:59:00"
    return ";".join(fields) + "~\n"


CDDY = (
    f"{MINE};某煤矿一号井;KJ1031X;煤矿安全监控系统;某厂家;2026-11-29;2026-11-29 15:59:00~\n"
    + cddy_record("CH4-01", "0001", upper=("1.00", "1.50", "1.00"), place="3201工作面上隅角")
    + cddy_record("CO-01", "0004", upper=("24", "", ""))
    + cddy_record("O2-01", "0012", lower=("18.5", "", ""))
    + cddy_record("FS-01", "1003", kind="KG")
    + cddy_record("WL-01", "0502")
    + "||"
)


def drop(directory, name, text, encoding="utf-8", age=10.0):
    """A finished file: written ``age`` seconds ago."""
    path = directory / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


async def scan(source, sink):
    # any blocking call on the event loop (file I/O, parsing) fails the test
    with blockbuster_ctx():
        return await source.scan_once(sink)


@pytest.fixture
def source(tmp_path):
    return FileDropSource(FileDropConfig(tmp_path))


class TestContract(SourceContract):
    """Fed by dropping a CDSS file of one reading, or an empty file, into the directory."""

    __test__ = True
    SITE = MINE
    POINT = "CH4-01"
    KEEPS_FAILED = True  # the file stays for the next look

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path):
        self.directory = tmp_path
        self.seconds = count()

    def create_source(self):
        return FileDropSource(FileDropConfig(self.directory, interval=0.02))

    def _next(self):
        return datetime(2026, 11, 29, 16, 0, 0) + timedelta(seconds=next(self.seconds))

    async def offer(self, value):
        at = self._next()
        stamp, when = at.strftime("%Y%m%d%H%M%S"), at.strftime("%Y-%m-%d %H:%M:%S")
        text = _cdss(
            f"{self.POINT};甲烷;上隅角;{value};%CH4;0;{when}~", header=f"{MINE};矿;{when}~"
        )
        await asyncio.to_thread(drop, self.directory, f"{MINE}_CDSS_{stamp}.txt", text)

    async def offer_malformed(self):
        stamp = self._next().strftime("%Y%m%d%H%M%S")
        await asyncio.to_thread(drop, self.directory, f"{MINE}_CDSS_{stamp}.txt", "")


async def test_a_cdss_file_becomes_one_batch_and_goes_to_done(tmp_path):
    sink = RecordingSink()
    source = FileDropSource(FileDropConfig(tmp_path, sites={MINE: "mine-7"}))
    drop(tmp_path, CDSS_NAME, CDSS)
    assert await scan(source, sink) == 1
    (batch,) = sink.batches
    assert (batch.site, str(batch.origin)) == ("mine-7", f"file {CDSS_NAME}")
    t = NOW_MS - 30_000  # 15:59:30 China time is 07:59:30 UTC
    assert [(r.point, r.t, r.value, r.status) for r in batch.readings] == [
        ("CH4-01", t, Decimal("1.60"), 3),  # 报警 | 断电
        ("CO-01", t, Decimal("30"), 0),
        ("O2-01", t, Decimal("18.0"), 0),
        ("FS-01", t, Decimal("1"), 0),  # no CDDY has said it is a switch point
    ]
    assert os.listdir(tmp_path / "done") == [CDSS_NAME] and not (tmp_path / CDSS_NAME).exists()
    assert (source.counters.batches, source.counters.readings) == (1, 4)
    assert source.counters.extra["files_done"] == 1


async def test_a_cddy_file_defines_the_analog_points_and_its_switch_points_are_left_out(
    source, tmp_path
):
    sink = RecordingSink()
    drop(tmp_path, CDDY_NAME, CDDY)
    drop(tmp_path, CDSS_NAME, CDSS)  # a later file: the definitions go first
    assert await scan(source, sink) == 2
    ((site_code, points),) = sink.definitions
    assert site_code == MINE
    ch4 = {"alarm": "1.00", "power_cut": "1.50", "restore": "1.00"}
    assert [(p.point, p.sensor_type, p.place, p.thresholds) for p in points] == [
        ("CH4-01", "methane", "3201工作面上隅角", ch4),
        ("CO-01", "co", "3201", {"alarm": "24"}),
        ("O2-01", "o2", "3201", {"alarm": "18.5", "lower": True}),
    ]
    assert source.counters.extra["points_skipped"] == 2  # FS-01 (KG) and WL-01 (水位 0502)
    (batch,) = sink.batches  # the switch point's reading is left out, counted
    assert [r.point for r in batch.readings] == ["CH4-01", "CO-01", "O2-01"]
    assert source.counters.extra["readings_skipped"] == 1
    # a restarted source learns the switch points from the last CDDY file in done/
    again = FileDropSource(FileDropConfig(tmp_path))
    drop(tmp_path, CDSS_NAME.replace("155940", "160040"), CDSS)
    await scan(again, sink)
    assert [r.point for r in sink.batches[-1].readings] == ["CH4-01", "CO-01", "O2-01"]


def _cdss(*records, header=HEADER, end="||"):
    return header + "".join(records) + end


GOOD = "CH4-01;甲烷;上隅角;0.50;%CH4;0;2026-11-29 15:59:30~"
MALFORMED = [
    (CDSS_NAME, "", "the file is empty"),
    (CDSS_NAME, _cdss(GOOD, end=""), "the file does not end with '||': it is cut short"),
    (CDSS_NAME, _cdss(GOOD, end="||\nmore~"), "the file goes on after its end mark '||'"),
    (CDSS_NAME, _cdss(GOOD, GOOD[:-1]), "record 2 is not ended by '~' before '||'"),
    (CDSS_NAME, _cdss(header="", end="||"), "no header: the file holds only '||'"),
    (CDSS_NAME, _cdss(GOOD, header="X1;矿;2026-11-29 15:59:40~"), "header: 矿井编码 'X1' differs"),
    (
        CDSS_NAME,
        _cdss(GOOD, header=f"{MINE};矿;yesterday~"),
        "header, field 3 数据时间: 'yesterday'",
    ),
    (
        CDSS_NAME,
        _cdss(GOOD, "CH4-02;甲烷;上隅角;0.5;0;2026-11-29 15:59:30~"),
        "record 2: 6 fields, a CDSS record has 7 (测点编码;传感器类型名称;",
    ),
    (
        CDSS_NAME,
        _cdss(GOOD, "CH4-02;甲烷;上隅角;0,5;%CH4;0;2026-11-29 15:59:30~"),
        "record 2, field 4 监测值: '0,5' is not a number",
    ),
    (
        CDSS_NAME,
        _cdss("CH4-02;甲烷;上隅角;NaN;%CH4;0;2026-11-29 15:59:30~"),
        "record 1, field 4 监测值: 'NaN' is not a number",
    ),
    (
        CDSS_NAME,
        _cdss("CH4-02;甲烷;上隅角;0.5;%CH4;0;2026-11-29 25:00:00~"),
        "record 1, field 7 数据时间: '2026-11-29 25:00:00' is not a time yyyy-MM-dd HH:mm:ss",
    ),
    (
        CDSS_NAME,
        _cdss("CH4-02;甲烷;上隅角;0.5;%CH4;256;2026-11-29 15:59:30~"),
        "record 1, field 6 测点状态: '256' is not a status 0-255",
    ),
    (
        CDSS_NAME,
        _cdss(";甲烷;上隅角;0.5;%CH4;0;2026-11-29 15:59:30~"),
        "record 1, field 1 测点编码: empty",
    ),
    (
        CDDY_NAME,
        _cdss(cddy_record("CH4-01", "0001", upper=("1.0", "x", "1.0"))),
        "record 1, field 13 上限断电门限: 'x' is not a number",
    ),
    (f"{MINE}_ABCD_20261129155940.txt", CDSS, "unknown file type 'ABCD' in the name (known: CDDY"),
    (
        "readings.txt",
        CDSS,
        "the name is not {矿井编码}_{TYPE}_{yyyyMMddHHmmss}.txt: 'readings.txt'",
    ),
    (f"{MINE}_CDSS_20261399000000.txt", CDSS, "the time in the name '20261399000000' is not a"),
    (CDSS_NAME, b"\xff\xfe\xff" + CDSS.encode(), "the text is neither UTF-8 nor GBK (byte 0)"),
]


@pytest.mark.parametrize(("name", "text", "reason"), MALFORMED, ids=[m[2][:30] for m in MALFORMED])
async def test_a_malformed_file_is_rejected_with_the_reason_and_nothing_of_it_delivered(
    source, tmp_path, name, text, reason
):
    sink = RecordingSink()
    drop(tmp_path, name, text)
    assert await scan(source, sink) == 1
    assert sink.batches == [] and sink.definitions == []
    assert sorted(os.listdir(tmp_path / "rejected")) == [name, name + ".reason"]
    written = (tmp_path / "rejected" / (name + ".reason")).read_text(encoding="utf-8")
    assert written.startswith(reason), written
    c = source.counters
    assert (c.malformed, c.batches, c.extra["files_rejected"]) == (1, 0, 1)
    assert name in c.last_error and reason in c.last_error


async def test_a_file_the_node_refuses_is_rejected_with_the_nodes_reason(source, tmp_path):
    sink = RecordingSink(refuse="readings.3.point: no point 'FS-01' at this site")
    drop(tmp_path, CDSS_NAME, CDSS)
    drop(tmp_path, CDDY_NAME, CDDY)
    assert await scan(source, sink) == 2
    for name in (CDSS_NAME, CDDY_NAME):
        reason = (tmp_path / "rejected" / f"{name}.reason").read_text(encoding="utf-8")
        assert reason == "refused by the node: readings.3.point: no point 'FS-01' at this site\n"
    assert (source.counters.refused, source.counters.malformed, source.counters.batches) == (
        2,
        0,
        0,
    )


async def test_a_file_still_being_written_is_left_until_it_is_finished(source, tmp_path):
    sink = RecordingSink()
    half = CDSS[: len(CDSS) // 2]
    path = drop(tmp_path, CDSS_NAME, half, age=0)  # just written
    assert await scan(source, sink) == 0
    with path.open("a", encoding="utf-8") as f:  # it grows; a writer that keeps an old time
        f.write(CDSS[len(half) : -4])
    os.utime(path, (time.time() - 10, time.time() - 10))
    assert await scan(source, sink) == 0  # the size changed since the last look
    with path.open("a", encoding="utf-8") as f:
        f.write(CDSS[-4:])
    os.utime(path, (time.time() - 10, time.time() - 10))
    assert await scan(source, sink) == 0 and sink.batches == []
    assert await scan(source, sink) == 1  # unchanged since the previous look: finished
    assert len(sink.batches[0].readings) == 4 and source.counters.malformed == 0


async def test_gbk_text_is_read(source, tmp_path):
    sink = RecordingSink()
    drop(tmp_path, CDDY_NAME, CDDY, encoding="gbk")
    drop(tmp_path, CDSS_NAME, CDSS, encoding="gbk")
    assert await scan(source, sink) == 2
    assert sink.definitions[0][1][0].place == "3201工作面上隅角"
    assert len(sink.batches[0].readings) == 3


async def test_other_networking_files_go_to_done_untouched(source, tmp_path):
    names = [f"{MINE}_{kind}_20261129155940.txt" for kind in ("FZDY", "YCBJ", "TJSJ")]
    for name in names:
        drop(tmp_path, name, "whatever the system writes")
    sink = RecordingSink()
    assert await scan(source, sink) == 3
    assert sorted(os.listdir(tmp_path / "done")) == sorted(names)
    assert source.counters.extra["files_not_interpreted"] == 3 and sink.batches == []


async def test_a_failing_sink_leaves_the_files_for_the_next_look(source, tmp_path):
    sink = RecordingSink(fail_first=1, failure=ConnectionError("the node is down"))
    drop(tmp_path, CDSS_NAME, CDSS)
    drop(tmp_path, CDSS_NAME.replace("155940", "160040"), CDSS)
    assert await scan(source, sink) == 0
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == [
        CDSS_NAME,
        CDSS_NAME.replace("155940", "160040"),
    ]
    assert "the node is down" in source.counters.last_error
    assert await scan(source, sink) == 2


async def test_run_looks_every_interval_until_cancelled(tmp_path):
    source = FileDropSource(FileDropConfig(tmp_path / "missing", interval=0.01))
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    await asyncio.sleep(0.05)  # the directory is missing: a failure, not a crash
    assert task.done() is False and source.counters.connected is False
    (tmp_path / "missing").mkdir()
    drop(tmp_path / "missing", CDSS_NAME, CDSS)
    for _ in range(200):
        if sink.batches:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sink.batches) == 1 and source.counters.connected is True


# -- with a real node ---------------------------------------------------------------------------


def events(node):
    return [(e["event"], e["payload"].get("point")) for e in node.log.read(0, 1000)]


async def test_with_the_node_definitions_register_points_and_values_raise_alarms_once(
    node, tmp_path
):
    node.execute("sensor.register-site", js(site()), user="zhang")
    sink = NodeSink(node, lambda f, *a, **k: asyncio.to_thread(f, *a, **k))
    source = FileDropSource(FileDropConfig(tmp_path))
    # CH4-09 has neither thresholds nor a location (设置地点): the node refuses that one point
    drop(tmp_path, CDDY_NAME, CDDY[:-2] + cddy_record("CH4-09", "0001") + "||")
    await scan(source, sink)
    shown = node.show(SITE_CODE, "site")["points"]
    assert sorted(shown) == ["CH4-01", "CO-01", "O2-01"]
    assert shown["CH4-01"]["thresholds"] == {
        "alarm": "1.0000",
        "power_cut": "1.5000",
        "restore": "1.0000",
        "lower": False,
    }
    assert (
        shown["O2-01"]["thresholds"]["alarm"] == "18.50" and shown["O2-01"]["thresholds"]["lower"]
    )
    reason = (tmp_path / "rejected" / f"{CDDY_NAME}.reason").read_text(encoding="utf-8")
    assert reason.startswith("refused by the node: point CH4-09: location: a methane point needs")

    before = len(events(node))
    drop(tmp_path, CDSS_NAME, CDSS)
    assert await scan(source, sink) == 1
    assert events(node)[before:] == [
        ("sensor.alarm_raised/1", "CH4-01"),  # 1.60 % ≥ 1.0
        ("sensor.power_cut/1", "CH4-01"),  # ≥ 1.5
        ("sensor.alarm_raised/1", "CO-01"),  # 30 ppm ≥ 24
        ("sensor.alarm_raised/1", "O2-01"),  # 18.0 % ≤ 18.5
    ]
    assert node.status()["raw_readings"] == 3  # FS-01, a switch point, is left out
    assert os.listdir(tmp_path / "done") == [CDSS_NAME]

    # exactly once: the same file again (a crash before the move, a system that resends)
    after = (len(events(node)), node.status()["raw_readings"])
    drop(tmp_path, CDSS_NAME, CDSS)
    assert await scan(source, sink) == 1
    assert (len(events(node)), node.status()["raw_readings"]) == after

    # a reading of the undefined point: rejected, and the other points' readings still taken
    later = f"{MINE}_CDSS_20261129155950.txt"
    drop(
        tmp_path,
        later,
        HEADER
        + "CH4-01;甲烷;3201工作面上隅角;0.50;%CH4;0;2026-11-29 15:59:50~\n"
        + "CH4-09;甲烷;3201回风巷;0.30;%CH4;0;2026-11-29 15:59:50~\n||",
    )
    await scan(source, sink)
    assert events(node)[after[0] :] == [
        ("sensor.power_restored/1", "CH4-01"),
        ("sensor.alarm_cleared/1", "CH4-01"),
    ]
    reason = (tmp_path / "rejected" / f"{later}.reason").read_text(encoding="utf-8")
    assert reason == (
        "refused by the node: readings.1.point: no point 'CH4-09' at this site"
        " (the readings of the other points were taken: CH4-01)\n"
    )
    c = source.counters
    assert (c.batches, c.readings, c.refused, c.malformed) == (3, 7, 2, 0)


async def test_a_large_file_is_handed_over_in_batches(tmp_path, monkeypatch):
    import hardware.filedrop as filedrop

    monkeypatch.setattr(filedrop, "BATCH", 3)
    sink = RecordingSink()
    source = FileDropSource(FileDropConfig(tmp_path))
    drop(tmp_path, CDSS_NAME, CDSS)
    assert await scan(source, sink) == 1
    assert [len(b.readings) for b in sink.batches] == [3, 1]
    assert os.listdir(tmp_path / "done") == [CDSS_NAME]
