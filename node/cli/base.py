"""What every anjian command shares: output as JSON (``--format text`` to read it), messages
in the reader's language, refusals on stderr with exit status 1 and usage errors with 2 (the
rule is in ``node.cli.main``), an open node, the node directory argument."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from domain.errors import DomainError, Invalid
from domain.i18n import EN, _, language, render
from federation.errors import FederationError
from federation.suite import load_public
from node import config as config_mod
from node.access import readable_json
from node.errors import ConfigError
from node.service import Node
from projections.present import title
from projections.queries import moment

FORMATS = ("json", "text")
F = TypeVar("F", bound=Callable[..., Any])


def emit(data: Any, fmt: str = "json") -> None:
    """Print what a command found: JSON for programs (the default), or ``text`` to read."""
    if fmt == "text":
        click.echo(as_text(data))
    else:
        click.echo(readable_json(data, indent=2))


def as_text(data: Any, indent: int = 0) -> str:
    """Data as lines to read: ``key: value``, nested values indented, a list's items each
    after ``-``; keys by their Chinese titles (``projections.present.title``) for a reader of
    Chinese, as the JSON names them for one of English."""
    pad = "  " * indent
    if isinstance(data, dict):
        if not data:
            return pad + "{}"
        lines = []
        for key, value in data.items():
            name = key if language() == EN else title(str(key))  # 发生时间, not occurred_at
            if _scalar(value):
                lines.append(f"{pad}{name}: {_word(value)}")
            else:
                lines.append(f"{pad}{name}:")
                lines.append(as_text(value, indent + 1))
        return "\n".join(lines)
    if isinstance(data, list | tuple):
        if not data:
            return pad + "-"
        if all(_scalar(v) for v in data):
            return pad + ", ".join(_word(v) for v in data)
        blocks = []
        for item in data:
            inner = as_text(item, indent + 1)
            blocks.append(pad + "- " + inner.lstrip(" "))
        return "\n".join(blocks)
    return pad + _word(data)


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple) or not value


def _word(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "-"
    if value is True:
        return str(_("yes"))
    if value is False:
        return str(_("no"))
    return str(render(value))


def format_option(default: str = "json") -> Callable[[F], F]:
    """``--format json|text``: how a command prints what it found."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="Output: json (for programs) or text (to read).",
    )


def input_options(help: str) -> Callable[[F], F]:
    """``--input FILE|-`` (and ``--json``, its former name, hidden, kept for a release): the
    command's input as JSON. The command takes ``source`` and ``legacy_source``; ``given``
    makes them one."""

    def decorate(f: F) -> F:
        f = click.option("--json", "legacy_source", type=click.File("rb"), hidden=True)(f)
        return click.option("--input", "source", type=click.File("rb"), help=help)(f)

    return decorate


def given(source: Any, legacy_source: Any, required: bool = True) -> Any:
    """The input ``--input`` (or the old ``--json``) named; a usage error when neither did and
    one is needed, or when both did."""
    ctx = click.get_current_context(silent=True)
    if source is not None and legacy_source is not None:
        raise click.UsageError(str(_("give --input once (--json is its former name)")), ctx)
    if source is None and legacy_source is None and required:
        raise click.MissingParameter(ctx=ctx, param_hint="'--input'", param_type="option")
    return source if source is not None else legacy_source


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every refusal into a clear message on stderr, in the reader's language, and exit
    status 1 (a usage error, click's, exits 2)."""
    try:
        yield
    except Invalid as e:
        click.echo(_("error: invalid input:"), err=True)
        for f in e.errors:
            click.echo(
                "  " + str(_("{field}: {message}", field=f.field, message=f.message)), err=True
            )
        sys.exit(1)
    except (DomainError, FederationError) as e:
        click.echo(_("error: {message}", message=e), err=True)
        sys.exit(1)


def warn(message: Any) -> None:
    """A warning on stderr, in the reader's language."""
    click.echo(_("warning: {message}", message=message), err=True)


@contextmanager
def open_node(directory: Path) -> Iterator[Node]:
    with user_errors():
        node = Node(config_mod.load(directory))
        try:
            yield node
        finally:
            node.close()


NODE_DIR = click.argument("directory", type=click.Path(path_type=Path, file_okay=False))


def bar(length: int, label: Any, hidden: bool = False) -> Any:
    return click.progressbar(
        length=length,
        label=str(label),
        file=sys.stderr,
        hidden=hidden or not sys.stderr.isatty(),
    )


def public_key(path: Path) -> bytes:
    try:
        return load_public(path)
    except FederationError as e:
        raise ConfigError(str(e)) from None


def when(value: str | None, option: str) -> int | None:
    """A time given as an option's value (ISO 8601; a bare date is China time); one that does
    not parse is a usage error naming the option (exit 2)."""
    try:
        return moment(value)
    except ValueError as e:
        raise click.BadParameter(str(render(e)), param_hint="'--" + option + "'") from None
