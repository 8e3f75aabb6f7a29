"""What an operator reads of the sensor adapters, in Chinese (the default) and in English: a
rejected reading, a rejected file (its reason file and the log line), a misconfiguration. The
suite runs in English; these ask for zh-CN, and fail if a translation is missing."""

import logging
import os
from decimal import Decimal

import pytest

from domain.i18n import EN, ZH, set_process_language, speaking
from hardware.base import Batch, Counters, Reading, deliver
from hardware.dropfolder import check_folder
from hardware.errors import Malformed, Misconfigured
from hardware.filedrop import FileDropConfig, FileDropSource, parse
from hardware.modbus import ModbusConfig, ModbusPoint
from hardware.monitorfiles import listed
from hardware.mqtt import readings_of
from tests.hardware.contract import RecordingSink
from tests.hardware.test_filedrop import CDSS_NAME, HEADER, drop, scan


@pytest.fixture
def in_chinese():
    """The node's process speaks zh-CN (as ``anjian serve`` does by default) for the test."""
    set_process_language(ZH)
    try:
        yield
    finally:
        set_process_language(EN)


def raised(kind, call, *args):
    with pytest.raises(kind) as caught:
        call(*args)
    return caught.value


def test_a_rejected_reading_reads_in_chinese_and_in_english():
    e = raised(Malformed, readings_of, b'{"point": "CH4-01", "value": 0.6, "time": "yesterday"}')
    assert e.message(ZH) == "第 0 条监测数据：时间 'yesterday' 不是 ISO 8601 格式"
    assert e.message(EN) == "reading 0: time 'yesterday' is not ISO 8601"
    e = raised(Malformed, readings_of, b'{"point": "CH4-01", "value": "high", "time": 1}')
    assert e.message(ZH) == "第 0 条监测数据：value 'high' 不是数值"
    with speaking(ZH):  # str() reads in the current language
        assert str(e) == "第 0 条监测数据：value 'high' 不是数值"


def test_a_malformed_file_names_the_record_and_field_in_chinese():
    bad_status = HEADER + "CH4-01;甲烷;3201工作面上隅角;1.60;%CH4;256;2026-11-29 15:59:30~\n||"
    e = raised(Malformed, parse, CDSS_NAME, bad_status.encode())
    assert e.message(ZH) == "第 1 条记录第 6 字段（测点状态）：'256' 不是 0-255 的状态值"
    assert e.message(EN) == "record 1, field 6 测点状态: '256' is not a status 0-255"
    e = raised(Malformed, parse, CDSS_NAME, b"")
    assert (e.message(ZH), e.message(EN)) == ("文件为空", "the file is empty")


async def test_a_rejected_file_has_its_reason_and_log_line_in_the_nodes_language(
    tmp_path, in_chinese, caplog
):
    source, sink = FileDropSource(FileDropConfig(tmp_path)), RecordingSink()
    drop(tmp_path, CDSS_NAME, HEADER + "CH4-01;甲烷;上隅角;0,5;%CH4;0;2026-11-29 15:59:30~\n||")
    with caplog.at_level(logging.WARNING, "anjian.hardware"):
        assert await scan(source, sink) == 1
    reason = (tmp_path / "rejected" / f"{CDSS_NAME}.reason").read_text(encoding="utf-8")
    assert reason == "第 1 条记录第 4 字段（监测值）：'0,5' 不是数值\n"
    said = f"file drop {tmp_path}：{CDSS_NAME}：第 1 条记录第 4 字段（监测值）：'0,5' 不是数值"
    assert source.counters.last_error == said
    assert [r.getMessage() for r in caplog.records] == [said]
    assert sink.batches == []


async def test_a_refused_batch_is_logged_in_the_nodes_language(in_chinese, caplog):
    class Source:
        def __init__(self) -> None:
            self.name, self.counters = "mqtt 127.0.0.1:1883 mine/#", Counters()

    source = Source()
    reading = Reading("CH4-09", 1_796_536_800_000, Decimal("0.5"))
    sink = RecordingSink("no point 'CH4-09' at this site")
    with caplog.at_level(logging.WARNING, "anjian.hardware"):
        assert not await deliver(source, sink, Batch("S1", (reading,), "mqtt"))
    said = "mqtt 127.0.0.1:1883 mine/#：mqtt：被拒收：no point 'CH4-09' at this site"
    assert source.counters.last_error == said and caplog.records[0].getMessage() == said
    assert source.counters.refused == 1


def test_a_misconfiguration_reads_in_chinese_and_in_english(tmp_path):
    point = ModbusPoint("CH4-01", 0)
    e = raised(Misconfigured, lambda: ModbusConfig("S1", "10.0.0.5", points=(point, point)))
    assert e.message(ZH) == "modbus 10.0.0.5:502：测点重复配置：CH4-01"
    assert e.message(EN) == "modbus 10.0.0.5:502: points configured twice: CH4-01"
    with pytest.raises(Misconfigured) as caught:
        ModbusPoint("CH4-01", 70_000)
    assert caught.value.message(ZH) == "CH4-01：寄存器 70000 不是寄存器地址（0–65535）"

    link = tmp_path / "drop"
    os.symlink(tmp_path, link)
    with pytest.raises(Misconfigured) as caught:
        check_folder(link)
    assert caught.value.message(ZH) == (
        f"文件投递目录 {link} 是符号链接：请填写实际目录的路径（[[hardware.filedrop]] directory）"
        "；系统从不跟随链接"
    )
    assert caught.value.message(EN).startswith(f"the file-drop folder {link} is a symbolic link")


def test_a_list_in_a_message_is_joined_as_the_language_joins_it():
    shown = listed([f"CH4-{i:02d}" for i in range(1, 13)])
    assert shown.render(ZH) == (
        "CH4-01、CH4-02、CH4-03、CH4-04、CH4-05、CH4-06、CH4-07、CH4-08、CH4-09、CH4-10，另有 2 项"
    )
    assert shown.render(EN).endswith("CH4-09, CH4-10 and 2 more")
