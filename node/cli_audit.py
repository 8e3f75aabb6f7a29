"""The auditor's commands (`anjian audit ...`): export a node's history, verify an export or a
node directory with nothing but the root key, replay it as it stood at a moment, and prove
single events, append-only growth and raw readings against signed checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from federation.errors import FederationError
from federation.keys import build_trust
from federation.suite import key_id, load_public
from federation.verify import Grant, Trust
from node import config as config_mod
from node.audit import verify
from node.clitools import NODE_DIR, emit, user_errors
from node.errors import ConfigError
from node.export import Source, envelope_count, export, open_source
from projections.queries import moment

SOURCE = click.argument("source", type=click.Path(exists=True, path_type=Path))
ROOT_KEY = click.option(
    "--root-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The national root public key: every key must chain to it.",
)


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


@click.group()
def audit() -> None:
    """Export, verify, replay and prove signed history: who recorded what, when, with which
    key, nothing changed."""


@audit.command("export")
@NODE_DIR
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--region", help="Only origins inside this division code's area.")
@click.option("--until", help="As it stood at this time (ISO 8601; a bare date is China time).")
def audit_export(directory: Path, out: Path, region: str | None, until: str | None) -> None:
    """Write a self-contained export (envelopes, checkpoints, key documents) of the whole
    logs this node holds, that verifies with nothing but the national root public key.

    \b
    Example:
      anjian audit export ./national --out hebei.anjian --region 130000 --until 2026-06-30
    """
    with user_errors():
        config = config_mod.load(directory)
        moment_ = when(until, "until")
        with bar(envelope_count(config), "exporting") as b:
            summary = export(config, out, region=region, until=moment_, progress=b.update)
    emit(summary)


@audit.command("verify")
@SOURCE
@ROOT_KEY
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Or pin one node's own public key (PEM) instead of the hierarchy.",
)
@click.option(
    "--fast", is_flag=True, help="Authenticate runs by checkpoints; skip per-event signatures."
)
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes [all cores].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(
    source: Path,
    root_key: Path | None,
    key_file: Path | None,
    fast: bool,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Verify an export file or a node directory: every envelope's signature, the chain, the
    sequence, the checkpoints, each key's validity at its position (and, in a node directory,
    that every stored event matches its envelope). Exit 0 when everything holds; otherwise 1,
    with the first failure per origin.

    \b
    Example:
      anjian audit verify hebei.anjian --root-key root.pub
    """
    with user_errors(), open_source(source) as src:
        trust, refused = _trust(src, root_key, key_file)
        total = sum(n for _, n in src.origins())
        with bar(total, "verifying", as_json) as b:
            report = verify(src, trust, signatures=not fast, jobs=jobs, progress=b.update)
        report["refused_documents"] = refused
    if as_json:
        emit(report)
    else:
        for o in report["origins"]:
            click.echo(
                f"{o['origin']}: {o['envelopes']} envelopes, {o['checkpoints']} checkpoints,"
                f" root {o['root'][:16]}…"
            )
        for f in report["failures"]:
            click.echo(
                f"FAILED {f['origin']} at sequence {f['seq']}: {f['reason']}: {f['message']}",
                err=True,
            )
        if report["ok"]:
            click.echo(
                f"ok: {report['events_checked']} events of {report['origins_checked']} origins,"
                f" {report['checkpoints_checked']} checkpoints verified ({report['signatures']})"
            )
    sys.exit(0 if report["ok"] else 1)


def _trust(source: Source, root_key: Path | None, key_file: Path | None) -> tuple[Trust, list[str]]:
    if (root_key is None) == (key_file is None):
        raise ConfigError("give --root-key (the hierarchy) or --key (one pinned node key)")
    if key_file is not None:
        if source.config is None:
            raise ConfigError("--key pins a node directory's own key; an export needs --root-key")
        public = public_key(key_file)
        return Trust([Grant(source.config.node.origin, public, key_id(public))]), []
    assert root_key is not None
    trust, problems = build_trust(public_key(root_key), source.documents)
    return trust, [str(p) for p in problems]
