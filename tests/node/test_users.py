"""node/users.py and `anjian users`: tokens stored as digests with their expiry, rotation,
entries from before tokens expired, console passwords as argon2id hashes, and every change of
users in the access log (`anjian users log`)."""

import json
import stat
import time
import tomllib

import pytest
from click.testing import CliRunner

from node.cli.main import main
from node.errors import ConfigError, NotFound
from node.users import (
    DAY_MS,
    Role,
    add_user,
    check_password,
    digest,
    list_users,
    read_table,
    remove_user,
    rotate_token,
    set_password,
)
from tests.factories import NOW

NOW_MS = int(NOW.timestamp() * 1000)  # 2026-11-29T16:00:00+08:00


def test_a_token_is_stored_as_a_digest_with_its_expiry(tmp_path):
    path = tmp_path / "users.toml"
    token = add_user(path, "clerk", Role.WRITER, days=30, now_ms=NOW_MS)
    assert token not in path.read_text()
    user = read_table(path)[digest(token)]
    assert user.expires_ms == NOW_MS + 30 * DAY_MS
    assert not user.token_expired(NOW_MS + 30 * DAY_MS - 1)
    assert user.token_expired(NOW_MS + 30 * DAY_MS)
    entry = tomllib.loads(path.read_text())["users"][0]
    assert entry["token_expires"].isoformat() == "2026-12-29T16:00:00+08:00"  # readable TOML
    assert list_users(path, now_ms=NOW_MS + 31 * DAY_MS) == [
        {
            "name": "clerk",
            "role": "writer",
            "token_expires": "2026-12-29T16:00:00+08:00",
            "token_expired": True,
            "password": False,
        }
    ]


def test_rotation_replaces_the_token_and_renews_the_expiry(tmp_path):
    path = tmp_path / "users.toml"
    old = add_user(path, "clerk", Role.WRITER, days=90, now_ms=NOW_MS)
    add_user(path, "analyst", Role.READER, days=90, now_ms=NOW_MS)
    new = rotate_token(path, "clerk", days=90, now_ms=NOW_MS + 80 * DAY_MS)
    table = read_table(path)
    assert digest(old) not in table and table[digest(new)].name == "clerk"
    assert table[digest(new)].expires_ms == NOW_MS + 170 * DAY_MS
    assert {u.name for u in table.values()} == {"clerk", "analyst"}
    with pytest.raises(NotFound, match="no user 'ghost'"):
        rotate_token(path, "ghost")
    with pytest.raises(ConfigError, match="users rotate"):
        add_user(path, "clerk", Role.READER)


def test_an_entry_from_before_tokens_expired_counts_as_expired(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text(
        '[[users]]\nname = "old"\nrole = "writer"\ntoken_sha256 = "' + digest("t") + '"\n'
    )
    user = read_table(path)[digest("t")]
    assert user.expires_ms is None and user.token_expired(0)
    assert list_users(path)[0]["token_expires"] is None
    assert list_users(path)[0]["token_expired"] is True
    new = rotate_token(path, "old", days=90)
    assert not read_table(path)[digest(new)].token_expired(NOW_MS)


def test_passwords_are_argon2id_hashes_and_checked_alike_for_unknown_users(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "clerk", Role.WRITER)
    with pytest.raises(ConfigError, match="12 to 1024 characters"):
        set_password(path, "clerk", "short")
    set_password(path, "clerk", "correct horse battery")
    assert "correct horse" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (user,) = read_table(path).values()
    assert user.password.startswith("$argon2id$") and "password" not in repr(user)
    assert check_password(user, "correct horse battery")
    assert not check_password(user, "correct horse batterY")
    assert not check_password(None, "correct horse battery")  # an unknown user
    with pytest.raises(NotFound):
        set_password(path, "ghost", "correct horse battery")
    remove_user(path, "clerk")
    assert read_table(path) == {}


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, [str(a) for a in args], input=input)

    return invoke


def test_the_users_commands_expire_rotate_set_passwords_and_log_each_change(
    run, node_dir, monkeypatch
):
    monkeypatch.setenv("LOGNAME", "admin")
    monkeypatch.setenv("ANJIAN_HTTP_TOKEN_DAYS", "7")
    r = run("users", "add", node_dir, "clerk", "--role", "writer")
    assert r.exit_code == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("ajt_") and "shown only this once" in r.stderr
    (user,) = read_table(node_dir / "users.toml").values()
    expires = next(u["token_expires"] for u in json.loads(run("users", "list", node_dir).stdout))
    assert expires in r.stderr
    assert abs(user.expires_ms - time.time() * 1000 - 7 * DAY_MS) < 60_000  # as configured

    r = run("users", "rotate", node_dir, "clerk")
    assert r.exit_code == 0 and r.stdout.strip() != token
    assert digest(token) not in read_table(node_dir / "users.toml")

    # the password comes from a prompt or standard input, never an argument
    assert run("users", "password", node_dir, "clerk", "a-password-here").exit_code == 2
    r = run("users", "password", node_dir, "clerk", input="correct horse battery\n")
    assert r.exit_code == 0, r.stderr
    (user,) = read_table(node_dir / "users.toml").values()
    assert check_password(user, "correct horse battery")
    r = run("users", "password", node_dir, "clerk", input="short\n")
    assert r.exit_code == 1 and "12 to 1024" in r.stderr

    listed = json.loads(run("users", "list", node_dir).stdout)
    assert listed[0]["password"] is True and listed[0]["token_expired"] is False
    assert run("users", "remove", node_dir, "clerk").exit_code == 0
    assert run("users", "remove", node_dir, "clerk").exit_code == 1

    entries = json.loads(run("users", "log", node_dir).stdout)
    assert [(e["user"], e["action"], e["target"], e["result"], e["remote"]) for e in entries] == [
        ("admin", "user.add", "clerk", "ok", "local"),
        ("admin", "user.rotate", "clerk", "ok", "local"),
        ("admin", "user.password", "clerk", "ok", "local"),
        ("admin", "user.remove", "clerk", "ok", "local"),
    ]
    assert entries[0]["at"].endswith("+08:00")
    only = json.loads(run("users", "log", node_dir, "--action", "user.rotate").stdout)
    assert [e["action"] for e in only] == ["user.rotate"]
    assert json.loads(run("users", "log", node_dir, "--user", "someone").stdout) == []
    assert json.loads(run("users", "log", node_dir, "--since", "2999-01-01").stdout) == []
    r = run("users", "log", node_dir, "--since", "yesterday")
    assert r.exit_code == 2 and "--since" in r.stderr
