"""The file-drop adapter against a hostile file system: the folder is written by
others, who can put a symbolic link, a FIFO, a hard link or a huge file where a monitoring file
should be, or a link in place of done/ and rejected/. Each is refused with a named reason,
nothing is read through a link or written outside the drop folder, good files keep flowing, and
a 40 MB file is taken in memory that does not grow with it."""

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hardware.dropfolder import DropFolder
from hardware.errors import Misconfigured
from hardware.filedrop import FileDropConfig, FileDropSource, prune_kept
from tests.hardware.contract import RecordingSink
from tests.hardware.test_filedrop import CDSS, CDSS_NAME, HEADER, MINE, drop, scan

LATER = CDSS_NAME.replace("155940", "160040")
SECRET = "TOPSECRET-root:$6$salt$hash"


@pytest.fixture
def outside(tmp_path):
    """A folder outside the drop folder, with a file the node must never read or change."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text(f"{SECRET};x;2026-11-29 15:59:40~\n||", "utf-8")
    return path


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "drop"
    path.mkdir()
    return path


def snapshot(path):
    """Every file under ``path`` (not following links) with its bytes."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = os.path.join(root, name)
            found[os.path.relpath(p, path)] = (
                os.readlink(p) if os.path.islink(p) else Path(p).read_bytes()
            )
    return found


def reason(folder, name):
    return (folder / "rejected" / f"{name}.reason").read_text(encoding="utf-8")


# -- the folders ----------------------------------------------------------------------------------


def test_a_drop_folder_that_is_a_symbolic_link_refuses_to_start(tmp_path, outside):
    link = tmp_path / "drop"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(Misconfigured, match="is a symbolic link: give the real folder's path"):
        FileDropSource(FileDropConfig(link))
    (tmp_path / "file").write_text("x")
    with pytest.raises(Misconfigured, match="is a regular file, not a directory"):
        FileDropSource(FileDropConfig(tmp_path / "file"))


async def test_a_drop_folder_replaced_by_a_link_after_start_takes_nothing(
    tmp_path, folder, outside
):
    source = FileDropSource(FileDropConfig(folder))
    drop(outside, CDSS_NAME, CDSS)
    before = snapshot(outside)
    folder.rename(tmp_path / "drop.old")
    folder.symlink_to(outside, target_is_directory=True)
    sink = RecordingSink()
    assert await scan(source, sink) == 0
    assert sink.batches == [] and snapshot(outside) == before
    assert "is a symbolic link, not a directory" in source.counters.last_error
    assert source.counters.extra["failures"] == 1 and source.counters.connected is False


@pytest.mark.parametrize("kept", ["done", "rejected"])
async def test_a_kept_folder_that_is_a_link_stops_the_looks_and_nothing_is_written_through_it(
    folder, outside, kept
):
    (folder / kept).symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    drop(folder, CDSS_NAME, CDSS)
    drop(folder, LATER, "not a monitoring file")
    source, sink = FileDropSource(FileDropConfig(folder)), RecordingSink()
    assert await scan(source, sink) == 0
    assert snapshot(outside) == before, "written through the link"
    assert sink.batches == [] and {CDSS_NAME, LATER} <= set(os.listdir(folder))
    assert f"{folder / kept} is a symbolic link, not a directory" in source.counters.last_error
    assert source.counters.extra["failures"] == 1 and source.counters.connected is False
    # mended by an operator: the files flow, into folders the node makes 0700
    (folder / kept).unlink()
    assert await scan(source, sink) == 2
    assert len(sink.batches) == 1 and snapshot(outside) == before
    for made in ("done", "rejected"):
        assert stat.S_IMODE(os.lstat(folder / made).st_mode) == 0o700
    assert os.listdir(folder / "done") == [CDSS_NAME]


async def test_a_kept_folder_that_is_a_file_is_named_so(folder):
    (folder / "rejected").write_text("x")
    drop(folder, CDSS_NAME, CDSS)
    source = FileDropSource(FileDropConfig(folder))
    assert await scan(source, RecordingSink()) == 0
    assert "rejected is a regular file, not a directory" in source.counters.last_error


def test_a_kept_folder_swapped_for_a_link_between_check_and_move_is_not_followed(folder, outside):
    drop(folder, CDSS_NAME, CDSS)
    before = snapshot(outside)
    with DropFolder(folder) as opened:
        opened.check_kept()
        opened.kept("rejected")  # made and opened: the one checked
        (folder / "rejected").rename(folder / "rejected.old")
        (folder / "rejected").symlink_to(outside, target_is_directory=True)
        opened.move(CDSS_NAME, "rejected", "a reason")
    assert snapshot(outside) == before
    assert sorted(os.listdir(folder / "rejected.old")) == [CDSS_NAME, f"{CDSS_NAME}.reason"]


def test_a_reason_file_that_is_a_link_is_replaced_not_written_through(folder, outside):
    (folder / "rejected").mkdir(mode=0o700)
    (folder / "rejected" / f"{CDSS_NAME}.reason").symlink_to(outside / "secret.txt")
    drop(folder, CDSS_NAME, CDSS)
    before = snapshot(outside)
    with DropFolder(folder) as opened:
        opened.move(CDSS_NAME, "rejected", "why")
    assert snapshot(outside) == before
    assert not os.path.islink(folder / "rejected" / f"{CDSS_NAME}.reason")
    assert reason(folder, CDSS_NAME) == "why\n"


# -- the files ------------------------------------------------------------------------------------


async def test_a_file_that_is_a_symbolic_link_is_moved_aside_unread(folder, outside):
    drop(outside, "good.txt", CDSS)  # a valid file: read through the link it would be delivered
    links = {CDSS_NAME: outside / "good.txt", LATER: outside / "secret.txt"}
    for name, target in links.items():
        (folder / name).symlink_to(target)
    good = CDSS_NAME.replace("155940", "170040")
    drop(folder, good, CDSS)
    before = snapshot(outside)
    source, sink = FileDropSource(FileDropConfig(folder)), RecordingSink()
    assert await scan(source, sink) == 3
    assert [str(b.origin) for b in sink.batches] == [f"file {good}"], "good files keep flowing"
    for name, target in links.items():
        assert reason(folder, name) == "a symbolic link: refused, not read\n"
        assert os.readlink(folder / "rejected" / name) == str(target)  # the link, moved
    assert snapshot(outside) == before
    assert SECRET[:9] not in json.dumps(source.counters.__dict__)
    assert source.counters.malformed == 2 and source.counters.extra["files_rejected"] == 2


async def test_a_fifo_a_directory_and_a_hard_link_are_refused_unread(folder, outside):
    os.mkfifo(folder / CDSS_NAME)  # opened for reading, it would block the adapter
    (folder / "notes.txt").mkdir()
    os.link(outside / "secret.txt", folder / LATER)  # someone else's file, by another name
    os.utime(folder / LATER, (os.stat(folder / LATER).st_mtime - 10,) * 2)  # finished
    good = CDSS_NAME.replace("155940", "170040")
    drop(folder, good, CDSS)
    before = snapshot(outside)
    source, sink = FileDropSource(FileDropConfig(folder)), RecordingSink()
    assert await scan(source, sink) == 4
    assert len(sink.batches) == 1
    assert reason(folder, CDSS_NAME) == "a FIFO: refused, not read\n"
    assert reason(folder, "notes.txt") == "a directory: refused, not read\n"
    assert reason(folder, LATER) == "a file with 2 links (a hard link): refused, not read\n"
    assert snapshot(outside) == before
    assert SECRET[:9] not in json.dumps(source.counters.__dict__)


async def test_a_file_larger_than_max_file_bytes_is_rejected_unread(folder):
    big = HEADER + "x" * 2000  # malformed too: the size is named, the content never looked at
    drop(folder, CDSS_NAME, big)
    drop(folder, LATER, CDSS + " " * (1024 - len(CDSS.encode())))  # at the limit: taken
    source = FileDropSource(FileDropConfig(folder, max_file_bytes=1024))
    sink = RecordingSink()
    assert await scan(source, sink) == 2
    size = len(big.encode())
    assert reason(folder, CDSS_NAME) == (
        f"{size} bytes, more than the 1024 a file may have ([[hardware.filedrop]]"
        " max_file_bytes): refused, not read\n"
    )
    assert [str(b.origin) for b in sink.batches] == [f"file {LATER}"]
    assert os.listdir(folder / "done") == [LATER]


async def test_messages_quote_a_file_only_in_a_short_escaped_excerpt(folder, caplog):
    evil = "\x1b[2J\x1b]2,owned\x07" + "A" * 10_000 + "\n\u202e"
    drop(folder, CDSS_NAME, f"{evil};矿;2026-11-29 15:59:40~\n||")
    bad_name = f"{MINE}_CDSS_2026\x1b[31m.txt"
    drop(folder, bad_name, CDSS)
    source = FileDropSource(FileDropConfig(folder))
    assert await scan(source, RecordingSink()) == 2
    written = reason(folder, CDSS_NAME)
    assert written.startswith("header: 矿井编码 '\\x1b[2J\\x1b]2,owned\\x07AAAA")
    assert len(written) < 200
    logged = [r.getMessage() for r in caplog.records]
    assert any("\\x1b[31m" in m for m in logged)  # the name, escaped
    for text in [written, reason(folder, bad_name), *logged]:
        assert not any(c in text.rstrip("\n") for c in "\x1b\x07\n\u202e"), text
        assert len(text) < 400


def test_prune_deletes_old_kept_files_and_never_follows_a_link(folder, outside):
    (folder / "done").mkdir()
    (folder / "done" / "old.txt").write_text("x")
    (folder / "done" / "new.txt").write_text("x")
    (folder / "done" / "link.txt").symlink_to(outside / "secret.txt")
    old = 1_000_000_000
    os.utime(folder / "done" / "old.txt", (old, old))
    os.utime(folder / "done" / "link.txt", (old, old), follow_symlinks=False)
    os.utime(outside / "secret.txt", (old, old))
    before = snapshot(outside)
    cutoff = (old + 1) * 1000
    assert prune_kept(folder, cutoff) == 2  # old.txt and the link itself
    assert os.listdir(folder / "done") == ["new.txt"] and snapshot(outside) == before
    (folder / "rejected").symlink_to(outside, target_is_directory=True)
    with pytest.raises(Misconfigured, match="rejected is a symbolic link"):
        prune_kept(folder, cutoff)
    assert snapshot(outside) == before
    assert prune_kept(folder / "missing", cutoff) == 0


# -- memory ---------------------------------------------------------------------------------------

TAKE = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    from pathlib import Path
    from hardware.filedrop import FileDropConfig, FileDropSource

    class Counting:  # keeps nothing of what it is given
        batches = largest = taken = 0

        async def readings(self, batch):
            self.batches += 1
            self.taken += len(batch.readings)
            self.largest = max(self.largest, len(batch.readings))
            return {}

        async def points(self, site, points):
            return {}

    source = FileDropSource(FileDropConfig(Path(sys.argv[1]), max_file_bytes=64 << 20))
    sink = Counting()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    moved = asyncio.run(source.scan_once(sink))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"moved": moved, "taken": sink.taken, "largest": sink.largest,
                      "grew_kib": after - before, "malformed": source.counters.malformed}))
    """
)


@pytest.mark.slow
def test_a_40_mb_cdss_file_is_taken_in_memory_that_does_not_grow_with_it(folder):
    """In a process of its own, so that its peak resident size is this file's alone (the
    adapter before it streamed grew by 593 MB on this file)."""
    records = 0
    with open(folder / CDSS_NAME, "w", encoding="utf-8") as f:
        f.write(HEADER)
        while f.tell() < 40_000_000:
            n = records
            f.write(
                f"CH4-{n % 200:03d};甲烷;3201工作面上隅角;0.{n % 100:02d};%CH4;0;"
                f"2026-11-29 15:{n // 200 % 60:02d}:{n % 60:02d}~\n"
            )
            records += 1
        f.write("||\n")
    size = (folder / CDSS_NAME).stat().st_size
    then = os.stat(folder / CDSS_NAME).st_mtime - 10
    os.utime(folder / CDSS_NAME, (then, then))
    run = subprocess.run(
        [sys.executable, "-c", TAKE, str(folder)],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["moved"], result["taken"], result["malformed"]) == (1, records, 0)
    assert result["largest"] <= 5000
    grew = result["grew_kib"] * 1024
    print(
        f"file {size / 1e6:.1f} MB, {records} records: peak resident size grew {grew / 1e6:.1f} MB"
    )
    assert grew < size / 4, f"{grew / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"
    assert os.listdir(folder / "done") == [CDSS_NAME]


async def test_an_entry_whose_name_is_taken_in_a_kept_folder_stops_nothing(folder):
    """A directory dropped twice under one name, and a directory planted under a file's name
    before the file comes: each newcomer takes the next free name in rejected/ or done/,
    nothing is replaced, and the files after them flow."""
    source, sink = FileDropSource(FileDropConfig(folder)), RecordingSink()
    (folder / "notes.txt").mkdir()
    (folder / "notes.txt" / "inside").write_text("x")
    await scan(source, sink)
    (folder / "notes.txt").mkdir()
    (folder / "notes.txt" / "inside").write_text("y")
    (folder / "done").mkdir(mode=0o700, exist_ok=True)
    (folder / "done" / CDSS_NAME).mkdir()  # a name the coming file will want, taken
    drop(folder, CDSS_NAME, CDSS)
    later = CDSS_NAME.replace("155940", "170040")
    drop(folder, later, CDSS)
    await scan(source, sink)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "done",
        "rejected",
    ]
    assert (folder / "rejected" / "notes.1.txt" / "inside").read_text() == "y"
    assert (folder / "rejected" / "notes.txt" / "inside").read_text() == "x"
    assert len(sink.batches) == 2 and (folder / "done" / later).is_file()
    assert (folder / "done" / CDSS_NAME.replace(".txt", ".1.txt")).is_file()
