"""node/access.py: the node's files are private to its user (created so by the stores themselves,
whatever the process's umask; tightened with a logged line when the node opens a directory an
earlier version left readable), and the access log is JSON lines in China time, appended to a
private file and read back filtered."""

import json
import logging
import os
import stat

import pytest

from node import access
from node import config as config_mod
from node.readings import ReadingsStore
from node.service import Node
from node.users import Role, add_user
from tests.conftest import make_node_dir
from tests.factories import enterprise, js


@pytest.fixture
def permissive_umask():
    """What a process that did not go through the CLI (which sets 0o077) would create with."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_stores_and_users_file_are_private_whatever_the_umask(
    tmp_path, permissive_umask, clock
):
    directory = make_node_dir(tmp_path / "county")
    node = Node(config_mod.load(directory, environ={}), clock=clock)
    try:
        node.execute("enterprise.register", js(enterprise()), user="clerk")
        add_user(node.config.users_file, "clerk", Role.WRITER)
        sqlite = [f"{db}{suffix}" for db in ("events.db", "readings.db") for suffix in ("", "-wal")]
        for name in [*sqlite, "users.toml"]:
            assert (directory / name).exists(), name
            assert mode(directory / name) == 0o600, name
    finally:
        node.close()


def test_a_readings_store_elsewhere_is_private_too(tmp_path, permissive_umask):
    store = ReadingsStore(tmp_path / "elsewhere.db")
    try:
        assert {mode(p) for p in tmp_path.iterdir()} == {0o600}
        assert {p.name for p in tmp_path.iterdir()} >= {"elsewhere.db", "elsewhere.db-wal"}
    finally:
        store.close()


def test_opening_a_node_tightens_what_an_earlier_version_left_readable(
    tmp_path, permissive_umask, clock, caplog
):
    directory = make_node_dir(tmp_path / "county")
    (directory / "trust").mkdir()
    (directory / "trust" / "root.pub").write_text("key")
    (directory / "drop").mkdir()  # a folder another system writes into: left alone
    (directory / "elsewhere.txt").write_text("x")
    os.symlink(directory / "elsewhere.txt", directory / "link")
    (directory / "events.db").touch()
    assert mode(directory) == 0o755 and mode(directory / "node.toml") == 0o644
    with caplog.at_level(logging.WARNING, logger="anjian.access"):
        Node(config_mod.load(directory, environ={}), clock=clock).close()
    assert mode(directory) == 0o700
    for name in ("node.toml", "events.db", "trust/root.pub", "elsewhere.txt"):
        assert mode(directory / name) == 0o600, name
    assert mode(directory / "trust") == 0o700 and mode(directory / "drop") == 0o755
    line = next(r.getMessage() for r in caplog.records if r.name == "anjian.access")
    assert "made private" in line and "node.toml (0644)" in line and ". (0755)" in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="anjian.access"):
        Node(config_mod.load(directory, environ={}), clock=clock).close()
    assert not [r for r in caplog.records if r.name == "anjian.access"]  # once only


def test_access_lines_are_json_in_china_time_appended_to_a_private_file(tmp_path, permissive_umask):
    log = tmp_path / access.ACCESS_LOG
    log.write_text("")
    log.chmod(0o600)
    first = access.record(tmp_path, "clerk", "record", "id-1", at_ms=1_764_374_400_000, kind="x")
    access.record(tmp_path, None, "login", "ghost", "failed", "10.0.0.9", at_ms=1_764_460_800_000)
    access.record(tmp_path, "admin", "user.add", "clerk", at_ms=1_764_460_801_000)
    assert first == {
        "at": "2025-11-29T08:00:00.000+08:00",
        "user": "clerk",
        "action": "record",
        "target": "id-1",
        "result": "ok",
        "remote": "local",
        "kind": "x",
    }
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0]) == first
    assert json.loads(lines[1])["remote"] == "10.0.0.9"

    (tmp_path / "other").mkdir()
    access.record(tmp_path / "other", "clerk", "logout")
    assert mode(tmp_path / "other" / access.ACCESS_LOG) == 0o600

    with log.open("a") as f:
        f.write('{"at": "2025-11-30T08:00:0')  # a line cut short by a crash
    entries, bad = access.read(tmp_path)
    assert [e["action"] for e in entries] == ["record", "login", "user.add"] and bad == 1
    since = 1_764_460_800_000  # 2025-11-30T08:00+08:00
    assert [e["action"] for e in access.read(tmp_path, since_ms=since)[0]] == ["login", "user.add"]
    assert [e["action"] for e in access.read(tmp_path, user="admin")[0]] == ["user.add"]
    assert [e["target"] for e in access.read(tmp_path, action="login")[0]] == ["ghost"]


def test_the_access_log_is_opened_for_appending_only(tmp_path, monkeypatch):
    flags = []
    real_open = os.open

    def spy(path, flag, *args):
        if str(path).endswith(access.ACCESS_LOG):
            flags.append(flag)
        return real_open(path, flag, *args)

    monkeypatch.setattr(os, "open", spy)
    access.record(tmp_path, "clerk", "logout")
    assert flags and all(f & os.O_APPEND and not f & os.O_TRUNC for f in flags)


def test_an_audit_export_from_the_command_line_is_in_the_access_log(tmp_path, clock):
    from click.testing import CliRunner

    from node.cli.main import main

    directory = make_node_dir(tmp_path / "county")
    node = Node(config_mod.load(directory, environ={}), clock=clock)
    node.execute("enterprise.register", js(enterprise()), user="clerk")
    node.close()
    out = tmp_path / "county.anjian"
    result = CliRunner().invoke(main, ["audit", "export", str(directory), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines, bad = access.read(directory, action="export")
    assert bad == 0
    assert [(e["action"], e["target"], e["kind"]) for e in lines] == [("export", str(out), "audit")]


def test_a_record_from_the_command_line_is_in_the_access_log(tmp_path):
    from click.testing import CliRunner

    from node.cli.main import main

    directory = make_node_dir(tmp_path / "county")
    result = CliRunner().invoke(
        main,
        ["record", str(directory), "enterprise.register", "--json", "-", "--actor", "zhang"],
        input=js(enterprise()),
    )
    assert result.exit_code == 0, result.output
    recorded = json.loads(result.stdout)
    lines, _ = access.read(directory, action="record")
    assert [(e["user"], e["target"], e["kind"]) for e in lines] == [
        ("zhang", recorded["id"], "enterprise.register")
    ]


def test_a_line_is_bounded_and_invisible_characters_are_escaped(tmp_path):
    """A name or an id of kilobytes is cut; line separators, direction marks and zero-width
    characters are escaped (a line stays one line, a terminal shows what is there); Chinese
    stays readable."""
    access.record(tmp_path, "clerk\u200b\u2028\u202e", "record", "x" * 8000, kind="张三")
    text = (tmp_path / access.ACCESS_LOG).read_text(encoding="utf-8")
    assert text.count("\n") == 1 and "\u2028" not in text and "\u202e" not in text
    assert "\\u200b" in text and "张三" in text
    (entry,) = [json.loads(line) for line in text.splitlines()]
    assert entry["user"] == "clerk\u200b\u2028\u202e"
    assert len(entry["target"]) == access.BOUND + 1
