"""The command line speaks its reader's language: Chinese unless told otherwise (``--lang en``,
``ANJIAN_LANG=en``), its help, click's own texts, errors, refusals and what an action did."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from click.testing import CliRunner

from domain.i18n import EN, ZH, _, set_process_language, speaking
from node.cli.base import as_text
from node.cli.main import main

# nothing of the machine's locale may choose the language in these tests
UNSET = {"ANJIAN_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args, env=None, input=None):
        return runner.invoke(
            main, [str(a) for a in args], env={**UNSET, **(env or {})}, input=input
        )

    yield invoke
    set_process_language(EN)  # the rest of the suite reads English
    runner.invoke(main, ["--lang", "en", "--help"])  # and so does the CLI's help


@pytest.fixture
def county(tmp_path, cli):
    d = tmp_path / "county"
    assert cli("init", d, "--tier", "county", "--region", "130102").exit_code == 0
    return d


def test_help_reads_in_chinese_by_default(cli):
    r = cli("--help")
    assert r.exit_code == 0
    assert "anjian：安全生产监督管理部门的节点软件。" in r.stdout
    assert "用法" in r.stdout and "Usage" not in r.stdout
    assert "  anjian init ./county --tier county --region 130102\n" in r.stdout  # \b kept
    assert "消息和帮助的语言：zh-CN（默认）或 en" in r.stdout  # an option's help
    assert "备份中心：从归档流重建节点" in r.stdout  # a command's short help, its first sentence
    r = cli("users", "add", "--help")
    assert r.exit_code == 0 and "添加用户并打印其令牌（仅显示这一次）" in r.stdout
    assert "输出：json（供程序使用）或 text（供阅读）。" in r.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--lang", "en"], {}),
        (["--lang", "EN_us"], {}),  # as a locale names it
        ([], {"ANJIAN_LANG": "en"}),
        ([], {"LANG": "en_GB"}),
    ],
)
def test_help_reads_in_english_when_asked(cli, args, env):
    r = cli(*args, "--help", env=env)
    assert r.exit_code == 0
    assert "anjian: the node software of work-safety supervision bureaus." in r.stdout
    assert "Usage:" in r.stdout and "安全生产" not in r.stdout
    r = cli(*args, "users", "add", "--help", env=env)
    assert "Add a user and print their token (shown only this once)" in r.stdout


def test_a_usage_error_reads_in_chinese_and_exits_2(cli):
    r = cli("users", "add")
    assert r.exit_code == 2
    assert "缺少" in r.stderr and "DIRECTORY" in r.stderr
    r = cli("--lang", "en", "users", "add")
    assert r.exit_code == 2 and "Missing argument 'DIRECTORY'" in r.stderr


def test_a_bad_option_value_is_a_usage_error_in_chinese(cli, county):
    r = cli("users", "log", county, "--since", "yesterday")
    assert r.exit_code == 2 and "--since" in r.stderr and "用法" in r.stderr


def test_a_refusal_reads_in_chinese_and_exits_1(cli, county):
    r = cli("init", county, "--tier", "county", "--region", "130104")
    assert r.exit_code == 1
    assert r.stderr == (
        f"错误：{county} 已是另一个节点（region: 130102 ≠ 130104），请选择新的目录\n"
    )
    r = cli("record", county, "enterprise.register", "--input", "-", input="[]")
    assert r.exit_code == 1
    assert r.stderr == "错误：输入无效：\n  *：输入必须是 JSON 对象\n"
    r = cli("--lang", "en", "record", county, "enterprise.register", "--input", "-", input="[]")
    assert r.exit_code == 1
    assert r.stderr == "error: invalid input:\n  *: the input must be a JSON object\n"


def test_an_action_says_what_it_did_in_the_readers_language(cli, county):
    r = cli("users", "add", county, "clerk", "--role", "writer")
    assert r.exit_code == 0 and r.stdout.startswith("ajt_")
    assert "clerk 的令牌仅显示这一次：请交给 clerk" in r.stderr
    assert "Authorization: Bearer" in r.stderr
    r = cli("users", "remove", county, "clerk")
    assert r.exit_code == 0
    assert r.stdout.startswith(f"已从 {county} 删除用户 clerk（writer）：")
    r = cli("--lang", "en", "users", "add", county, "li")
    assert "the token of li is shown only this once: give it to li" in r.stderr


def test_the_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout == f"anjian {version('anjian')}\n"


def test_messages_of_the_cli_in_both_languages():
    error = _("error: {message}", message=_("the input must be a JSON object"))
    with speaking(ZH):
        assert str(error) == "错误：输入必须是 JSON 对象"
        assert as_text({"ok": True, "warnings": []}) == "ok: 是\n警示: -"
    with speaking(EN):
        assert str(error) == "error: the input must be a JSON object"
        assert as_text({"ok": False}) == "ok: no"


def test_a_language_the_product_does_not_speak_is_a_usage_error(cli):
    r = cli("--lang", "fr", "--help")
    assert r.exit_code == 2 and "'fr'" in r.stderr
    assert cli("--lang", "zh", "--help").exit_code == 0  # zh is zh-CN
