"""Every message a person reads exists in zh-CN and in English: the catalogue is complete
(``tests/messages.py``), and no message escapes it — an error raised, a log line, a line the
CLI prints with text that is not marked for translation fails here, naming the place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import messages

ROOT = Path(__file__).parents[1]
# programmer errors: raised where a caller of the code, not a user, got something wrong
NOT_READ = {"TypeError", "NotImplementedError", "AssertionError", "KeyError", "AttributeError"}
SPEAKERS = {"echo", "secho", "confirm", "prompt", "fail", "progressbar", "bar"}
LOG_LEVELS = {"info", "warning", "error", "critical", "exception"}
FIELD_CALLS = {"field", "FieldError", "Invalid"}
WAIVER = "# not read by a person"


def test_the_zh_cn_catalogue_is_complete():
    found = messages.problems()
    assert not found, "\n".join(
        found[:60]
        + [f"... and {len(found) - 60} more"] * (len(found) > 60)
        + ["(python -m tests.messages missing: the entries to translate)"]
    )


def _text(node: ast.AST) -> bool:
    """Whether an argument is text written for a person: an f-string, or a literal with a
    space in it (a stable code such as ``bad_payload`` has none), or such text joined or
    formatted."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return " " in node.value.strip()
    if isinstance(node, ast.BinOp):
        return _text(node.left) or _text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("format", "join") and _text(node.func.value)
    return False


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def untranslated(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found: dict[int, str] = {}
    where = path.resolve().relative_to(ROOT)

    def flag(node: ast.expr | ast.stmt, what: str) -> None:
        line = lines[node.lineno - 1]
        if WAIVER not in line:
            found.setdefault(node.lineno, f"{where}:{node.lineno}: {what}: {line.strip()}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            if _name(node.exc.func) in NOT_READ:
                continue
            args = list(node.exc.args) + [k.value for k in node.exc.keywords]
            if any(_text(a) for a in args):
                flag(node, "an error with untranslated text")
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            args = list(node.args) + [k.value for k in node.keywords]
            is_log = (
                name in LOG_LEVELS
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("log", "logger", "logging")
            )
            if is_log and node.args and _text(node.args[0]):
                flag(node, "a log line with untranslated text")
            elif (name in SPEAKERS or name in FIELD_CALLS) and any(_text(a) for a in args):
                flag(node, "untranslated text for a person")
    return list(found.values())


@pytest.mark.parametrize("package", messages.PACKAGES)
def test_no_message_escapes_the_catalogue(package):
    found = [x for p in sorted((ROOT / package).rglob("*.py")) for x in untranslated(p)]
    assert not found, f"{len(found)} places:\n" + "\n".join(found)
