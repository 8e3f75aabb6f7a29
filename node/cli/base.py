"""What every anjian command shares: JSON output, refusals as clear messages with exit status
1, an open node, the node directory argument."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from domain.errors import DomainError, Invalid
from federation.errors import FederationError
from federation.suite import load_public
from node import config as config_mod
from node.access import readable_json
from node.errors import ConfigError
from node.service import Node
from projections.queries import moment


def emit(data: Any) -> None:
    click.echo(readable_json(data, indent=2))


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every refusal into a clear message on stderr and exit status 1."""
    try:
        yield
    except Invalid as e:
        click.echo("error: invalid input:", err=True)
        for f in e.errors:
            click.echo(f"  {f.field}: {f.message}", err=True)
        sys.exit(1)
    except (DomainError, FederationError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@contextmanager
def open_node(directory: Path) -> Iterator[Node]:
    with user_errors():
        node = Node(config_mod.load(directory))
        try:
            yield node
        finally:
            node.close()


NODE_DIR = click.argument("directory", type=click.Path(path_type=Path, file_okay=False))


def bar(length: int, label: str, hidden: bool = False) -> Any:
    return click.progressbar(
        length=length,
        label=label,
        file=sys.stderr,
        hidden=hidden or not sys.stderr.isatty(),
    )


def public_key(path: Path) -> bytes:
    try:
        return load_public(path)
    except FederationError as e:
        raise ConfigError(str(e)) from None


def when(value: str | None, option: str) -> int | None:
    try:
        return moment(value)
    except ValueError as e:
        raise ConfigError(f"--{option}: {e}") from None
