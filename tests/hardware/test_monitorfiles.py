"""Reading monitoring files streaming (hardware.monitorfiles): whatever the size of the chunks a
file is read in — down to one byte, cutting a character, a record or the end mark in two — the
readings, the definitions and the first error named are the same; a record or a file that runs
on is refused; messages quote only short, escaped excerpts."""

import pytest

import hardware.monitorfiles as monitorfiles
from hardware.errors import Malformed
from hardware.monitorfiles import clean, excerpt, parse
from tests.hardware.test_filedrop import CDDY, CDDY_NAME, CDSS, CDSS_NAME, HEADER, MALFORMED, MINE

GOOD = [
    (CDSS_NAME, CDSS.encode()),
    (CDSS_NAME, b"\xef\xbb\xbf" + CDSS.encode()),  # a UTF-8 byte order mark
    (CDSS_NAME, CDSS.encode("gbk")),
    (CDDY_NAME, CDDY.encode()),
    (CDDY_NAME, CDDY.encode("gbk")),
]
BAD = [(name, text.encode() if isinstance(text, str) else text) for name, text, _ in MALFORMED]
BAD += [
    (CDSS_NAME, CDSS.encode()[:60] + b"\xff" + CDSS.encode()[60:]),  # neither, mid-file
    (CDSS_NAME, CDSS.encode("gbk")[:-3]),  # cut in the end mark
]


def outcome(name, data, not_analog=frozenset()):
    try:
        return parse(name, data, not_analog)
    except Malformed as e:
        return f"Malformed: {e}"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
@pytest.mark.parametrize(("name", "data"), GOOD + BAD, ids=range(len(GOOD + BAD)))
def test_any_chunk_size_reads_the_same(monkeypatch, chunk, name, data):
    whole = outcome(name, data, {"FS-01"})
    monkeypatch.setattr(monitorfiles, "CHUNK", chunk)
    assert outcome(name, data, {"FS-01"}) == whole


def test_good_files_read_whole():
    assert len(parse(CDSS_NAME, CDSS.encode()).readings) == 4
    assert len(parse(CDDY_NAME, CDDY.encode()).points) == 3


def test_a_record_that_runs_on_is_refused_without_holding_it():
    long = HEADER + "CH4-01;" + "x" * (monitorfiles.MAX_RECORD + 1) + "~||"
    with pytest.raises(Malformed, match="record 1 is longer than 16384 characters"):
        parse(CDSS_NAME, long.encode())
    with pytest.raises(Malformed, match="the header is longer than 16384"):
        parse(CDSS_NAME, ("y" * 20_000).encode())  # no '~' at all: never held whole


def test_a_definitions_file_holds_a_bounded_number_of_points(monkeypatch):
    monkeypatch.setattr(monitorfiles, "MAX_POINTS", 2)
    with pytest.raises(Malformed, match="more than 2 point definitions in one file"):
        parse(CDDY_NAME, CDDY.encode())


@pytest.mark.parametrize("status", ["²", "9" * 5000, "-1", "0x1"])
def test_a_status_is_an_ascii_number_0_to_255(status):
    record = f"CH4-01;甲烷;上隅角;0.5;%CH4;{status};2026-11-29 15:59:30~"
    with pytest.raises(Malformed, match=r"field 6 测点状态: .* is not a status 0-255"):
        parse(CDSS_NAME, (HEADER + record + "||").encode())


def test_excerpts_are_short_and_escaped():
    assert excerpt("CH4-01") == "'CH4-01'"
    assert excerpt("\x1b[2J" + "A" * 100) == "'\\x1b[2JAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'…"
    assert excerpt("\u202e\udcff") == "'\\u202e\\udcff'"  # a bidi override, an undecodable byte
    assert clean(f"{MINE}\n\x07.txt") == f"{MINE}\\n\\x07.txt"
    assert clean("z" * 300, 10) == "z" * 10 + "…"
