"""Bringing a node back: `anjian backup restore` (a whole node from an archive stream) and
`anjian recover` (a node's own history from its parent tier)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from domain.i18n import _
from federation.suite import public_pem
from federation.transport import TransportError
from node.cli.base import NODE_DIR, bar, emit, format_option, open_node, public_key
from node.config import nats_url
from node.errors import ConfigError
from node.replication.backup import recover, restore


def _url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return nats_url(value, "--from")
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


FROM = click.option(
    "--from",
    "url",
    required=True,
    callback=_url,
    help="NATS URL (nats://host:4222) to take it from.",
)
ROOT_KEY = click.option(
    "--root-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The national root public key, if the node's trust directory lacks it.",
)


def _run(
    directory: Path,
    root_key: Path | None,
    label: object,
    job: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
    url: str,
) -> dict[str, Any]:
    with open_node(directory) as node:
        if root_key is not None:
            node.config.trust_dir.mkdir(exist_ok=True)
            (node.config.trust_dir / "root.pub").write_bytes(public_pem(public_key(root_key)))
        with bar(0, label) as b:

            def total(n: int) -> None:
                b.length = n

            try:
                return asyncio.run(job(node, url, b.update, total))
            except TransportError as e:
                raise ConfigError(
                    _("NATS at {url}: {error}", url=url, error=str(e) or type(e).__name__)
                ) from None


@click.group()
def backup() -> None:
    """The backup centre: rebuild a node from an archive stream."""


@backup.command("restore")
@NODE_DIR
@FROM
@ROOT_KEY
@format_option()
def backup_restore(directory: Path, url: str, root_key: Path | None, fmt: str) -> None:
    """Rebuild a complete node (log and projections) from an archive stream alone, from its
    first message, verifying everything: the national centre's (or the backup centre's own,
    which republishes everything it holds). DIR is a node made with `anjian init` (its key
    restored, or a new one to be certified); interrupted, run it again: it goes on.

    \b
    Example, the national centre rebuilt from the backup centre's archive:
      anjian init ./national --tier national --region 000000
      anjian backup restore ./national --from nats://backup.example:4222 --root-key root.pub
    """
    emit(_run(directory, root_key, _("restoring"), restore, url), fmt)


@click.command("recover")
@NODE_DIR
@FROM
@ROOT_KEY
@format_option()
def recover_command(directory: Path, url: str, root_key: Path | None, fmt: str) -> None:
    """Take back a node's own history (and what it relayed) from its parent tier after its disk
    was lost, verified; it then continues its own sequence. If its key was lost too, the output
    says what the certifier signs (a new key from the next sequence, the old one revoked).

    \b
    Example:
      anjian init ./county --tier county --region 130102 --parent nats://city.example:4222
      anjian recover ./county --from nats://city.example:4222 --root-key root.pub
    """
    emit(_run(directory, root_key, _("recovering"), recover, url), fmt)
