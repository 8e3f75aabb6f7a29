"""The ``anjian`` command line: one click group, in its reader's language (``--lang``,
``ANJIAN_LANG``, the locale; zh-CN when none says: ``node.cli.i18n``).

Conventions every command keeps:

- Input: ``--input FILE|-`` (a file, or - for standard input) where a command reads JSON;
  ``--json`` is its former name, hidden and kept for a release.
- Output: what a command finds (a record, a status, a list) goes to stdout as JSON by default,
  or as text to read with ``--format text``; an action says what it did in a short line in
  the reader's language (``users add`` prints the token on stdout, alone, and on stderr what
  to do with it; ``users remove`` says whom it removed); ``--format json`` gives an action's
  result as JSON. A check (``audit verify``) reports as text by default, ``--format json``
  for programs. Warnings, notes and errors go to stderr, in the reader's language.
- Exit status: 0 done; 1 refused or failed; 2 a usage error.

  2 is click's ``UsageError`` (and its ``BadParameter``, ``MissingParameter``): the command
  line itself is wrong, and nothing was done — an unknown command or option, a missing
  argument, a value not of its option's form (a time that does not parse, a choice not
  offered, a number out of range, HOST:PORT, CODE=NAME), options that do not go together.
  1 is everything said after the command line was understood, by ``node.cli.base.
  user_errors`` with ``error:`` (``Invalid`` input — the JSON given is wrong, field by field —
  is a refusal too: the input was read, and the rules said no), or a failed check (``audit
  verify``, ``check-proof``): a refusal of the rules or of the node's state, a value that
  the node's configuration or rules refuse (``init --tier county --region 130100``: a city's
  code; a file that is not a key), a missing node directory, a server that cannot be
  reached.

Errors, warnings and notes go to stderr with a prefix in the reader's language (``错误：`` /
``error:``); click's own texts (``Usage:``, ``Missing argument``) are read in it too."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from domain.codes import Tier, tier_label
from domain.commands import BY_KIND, SPECS
from domain.errors import Invalid
from domain.i18n import ZH, _, gettext
from node import access, logs
from node import config as config_mod
from node.cli import i18n
from node.cli.audit import audit
from node.cli.backup import backup, recover_command
from node.cli.base import (
    NODE_DIR,
    emit,
    format_option,
    given,
    input_options,
    open_node,
    user_errors,
)
from node.cli.hardware import simulate_site
from node.cli.keys import keys
from node.cli.log import log
from node.cli.nats import nats
from node.cli.query import projections, query, readings
from node.cli.tls import tls
from node.cli.users import users
from node.errors import ConfigError
from node.keys import generate_node_key, nats_key_file, nats_public_file
from node.replication.status import PAGE, check_after, federation_view
from node.tuning import collect_less


class Main(click.Group):
    """The command line, started in its reader's language (``node.cli.i18n``)."""

    def main(self, args: Any = None, *rest: Any, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            lang = i18n.start(self, argv, os.environ)
        except i18n.LanguageError as e:
            e.show()
            sys.exit(e.exit_code)
        _short_helps(self, lang)
        return super().main(argv, *rest, **extra)


SHORT = 30


def _short_helps(command: click.Command, lang: str) -> None:
    """Chinese help has no spaces for click to shorten a command's help at (it would list the
    command with "..." alone): in Chinese, a command without a short help of its own is listed
    with its help's first sentence (up to 。), cut at ``SHORT`` characters."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            if i18n.original(sub, "short_help") is None:
                sub.short_help = _first_sentence(sub.help) if lang == ZH and sub.help else None
            _short_helps(sub, lang)


def _first_sentence(text: str) -> str:
    first = text.partition("\n\n")[0].strip().split("。")[0]
    first = " ".join(first.split())
    return first if len(first) <= SHORT else first[: SHORT - 1] + "…"


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@i18n.language_option
@click.version_option(package_name="anjian", message="anjian %(version)s")
def main() -> None:
    """anjian: the node software of work-safety supervision bureaus.

    \b
    Example, a county node on the embedded SQLite store:
      anjian init ./county --tier county --region 130102
      anjian users add ./county clerk --role writer
      anjian serve ./county
    """
    os.umask(0o077)  # what the node creates (stores, keys, logs) is its own: 0600 and 0700
    collect_less()


main.add_command(audit)
main.add_command(backup)
main.add_command(recover_command)
main.add_command(simulate_site)
for group in (keys, log, nats, query, projections, readings, tls, users):
    main.add_command(group)


@main.command()
@NODE_DIR
@click.option("--tier", type=click.Choice([t.value for t in Tier]), required=True)
@click.option(
    "--region",
    required=True,
    help="GB/T 2260 code of the bureau's area (000000: national, backup).",
)
@click.option("--parent", help="NATS URL of the parent tier, e.g. nats://city-host:4222.")
@click.option(
    "--nats",
    "nats_url",
    help="This tier's own NATS server (city and above), e.g. nats://127.0.0.1:4222.",
)
@click.option("--origin", help="Origin id for the node's whole life (default: the region code).")
@click.option(
    "--division",
    "divisions",
    multiple=True,
    metavar="CODE=NAME",
    help="A division newer than the shipped GB/T 2260 table, with its name (repeatable):"
    " written to [divisions] extra.",
)
@format_option()
def init(
    directory: Path,
    tier: str,
    region: str,
    parent: str | None,
    nats_url: str | None,
    origin: str | None,
    divisions: tuple[str, ...],
    fmt: str,
) -> None:
    """Create a node directory: configuration, the node's signing key (node.key, node.pub),
    its NATS identity (nats.nk, nats.pub: the certifier certifies both) and an empty log.

    \b
    Example:
      anjian init ./county --tier county --region 130102 --parent nats://city:4222
    """
    with user_errors():
        if (directory / config_mod.CONFIG_FILE).exists():  # run again: the node is there
            _same_node(directory, tier, region, parent, origin)
            with open_node(directory) as node:
                emit({"directory": str(directory.resolve()), **node.status()}, fmt)
            click.echo(
                _(
                    "the node at {directory} already exists ({tier} {region}); nothing was changed",
                    directory=str(directory),
                    tier=tier_label(tier),
                    region=region,
                ),
                err=True,
            )
            return
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(
                _(
                    "{directory} exists and is not empty; choose a new directory",
                    directory=str(directory),
                )
            )
        extra = dict(d.partition("=")[::2] for d in divisions)
        if any(not name for name in extra.values()):
            raise click.BadParameter(
                str(_("it is CODE=NAME, e.g. --division 139999=某某新区")),
                param_hint="'--division'",
            )
        toml = config_mod.new_node_toml(tier, region, parent, nats_url, origin, extra)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / config_mod.CONFIG_FILE).write_text(toml, encoding="utf-8")
        generate_node_key(directory)
    with open_node(directory) as node:
        nats_public = nats_public_file(nats_key_file(directory))
        emit(
            {
                "directory": str(directory.resolve()),
                **node.status(),
                "public_key_file": str(node.config.public_key_file),
                "nats_public_file": str(nats_public),
            },
            fmt,
        )
    click.echo(
        _(
            "next: have the certifier certify {directory}/node.pub with {nats_public}, install"
            " the certification (anjian keys install), and anjian users add {directory} NAME"
            " --role writer   (then: anjian serve {directory})",
            directory=str(directory),
            nats_public=str(nats_public),
        ),
        err=True,
    )


def _same_node(
    directory: Path, tier: str, region: str, parent: str | None, origin: str | None
) -> None:
    """Refuse to take an existing node for the one asked for when they differ (ConfigError
    naming each setting); the same node asked for again is fine."""
    node = config_mod.load(directory).node
    asked = {"tier": tier, "region": region, "parent": parent, "origin": origin}
    held = {"tier": node.tier.value, "region": node.region, "parent": node.parent}
    held["origin"] = node.origin
    differ = [
        f"{name}: {held[name]} ≠ {value}"
        for name, value in asked.items()
        if value is not None and held[name] != value
    ]
    if differ:
        raise ConfigError(
            _(
                "{directory} already holds another node ({differ}); choose a new directory",
                directory=str(directory),
                differ="; ".join(differ),
            )
        )


@main.command()
@NODE_DIR
@click.option("--host", help="Override [http] host.")
@click.option("--port", type=int, help="Override [http] port (0: any free port).")
def serve(directory: Path, host: str | None, port: int | None) -> None:
    """Serve the HTTP API until SIGINT or SIGTERM."""
    import uvloop

    from node.api.app import serve as serve_http

    logs.configure(logging.INFO)
    with open_node(directory) as node:
        http = node.config.http

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await serve_http(node, host or http.host, http.port if port is None else port, stop)

        try:
            uvloop.run(run())
        except OSError as e:
            raise ConfigError(_("cannot listen: {error}", error=str(e))) from None


@main.command()
@NODE_DIR
@click.argument("kind", type=click.Choice(list(BY_KIND)), metavar="KIND")
@input_options("Command as JSON: a file, or - for stdin.")
@click.option("--actor", default=None, help="Who records it (default: your login name).")
@click.option(
    "--id", "target", help='Id of the record the command acts on (or give "id" in the JSON).'
)
@format_option()
def record(
    directory: Path,
    kind: str,
    source: Any,
    legacy_source: Any,
    actor: str | None,
    target: str | None,
    fmt: str,
) -> None:
    """Record one command without a server. KIND is one of the command kinds (`anjian kinds`).

    \b
    Example:
      echo '{"name": "某煤矿", "credit_code": "91350100M000100Y43",
             "industry": "coal_mine", "division": "130102"}' |
        anjian record ./county enterprise.register --input - --actor zhang
    """
    raw = given(source, legacy_source).read()
    with user_errors():
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise Invalid.field(
                "*", _("the input is not valid JSON: {error}", error=str(e))
            ) from None
        if not isinstance(data, dict):
            raise Invalid.field("*", _("the input must be a JSON object"))
        if "id" in data and not BY_KIND[kind].creates:
            embedded = str(data.pop("id"))
            if target is not None and target != embedded:
                raise Invalid.field(
                    "id",
                    _(
                        "--id {target} and the JSON's id {embedded} differ",
                        target=target,
                        embedded=embedded,
                    ),
                )
            target = embedded
    with open_node(directory) as node:
        user = actor or getpass.getuser()
        result = node.execute(kind, json.dumps(data), user=user, target=target)
        access.record(directory, user, "record", result["id"], kind=kind)
        emit(result, fmt)


@main.command()
@NODE_DIR
@click.argument("record_id", metavar="ID")
@format_option()
def show(directory: Path, record_id: str, fmt: str) -> None:
    """Print a record (enterprise, accident ...) as it stands, with its history."""
    with open_node(directory) as node:
        emit(node.show(record_id), fmt)


@main.command()
@click.option(
    "--smoke", is_flag=True, help="A short run: exit 0 only if it converges in 3 minutes."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the federation in this (new) directory instead of a temporary one.",
)
def demo(smoke: bool, directory: Path | None) -> None:
    """Run a small federation here: national, one province, one city, two counties, each with
    its own nats-server or none, as bureaus would. Records a day at the counties, cuts one
    county's line for a while, and prints per-tier counts and digests until they converge.

    Runs the nats-server installed with anjian (ANJIAN_NATS_SERVER names another)."""
    import tempfile

    from node.cli.demo import run as run_demo
    from node.replication.natsd import nats_server_binary

    logs.configure(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    with user_errors():
        nats_server_binary()
        if directory is not None:
            if directory.exists() and any(directory.iterdir()):
                raise ConfigError(
                    _(
                        "{directory} exists and is not empty; choose a new directory",
                        directory=str(directory),
                    )
                )
            ok_ = run_demo(directory, smoke)
        else:
            with tempfile.TemporaryDirectory(prefix="anjian-demo-") as tmp:
                ok_ = run_demo(Path(tmp), smoke)
    if not ok_:
        sys.exit(1)


@main.command()
@NODE_DIR
@click.option(
    "--after",
    metavar="ORIGIN",
    help="Show the origins after this one (the next of the page before).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=PAGE,
    show_default=True,
    help="Origins shown in one page.",
)
@format_option()
def status(directory: Path, after: str | None, limit: int, fmt: str) -> None:
    """Print the node's origin, tier, region, event count and last log position, and per
    origin held from others (a page of them): applied, pending, lag, quarantined, unknown
    types."""
    if after is not None:
        try:
            check_after(after)
        except ValueError as e:
            raise click.BadParameter(str(e.args[0]), param_hint="--after") from None
    with open_node(directory) as node:
        view = federation_view(node, node.clock(), after=after, limit=limit)
        emit({**node.status(), "federation": view}, fmt)


@main.command()
@click.argument("kind", required=False, type=click.Choice(list(BY_KIND)), metavar="[KIND]")
@format_option()
def kinds(kind: str | None, fmt: str) -> None:
    """List the command kinds, or print one kind's JSON schema."""
    if kind:
        emit(BY_KIND[kind].model.model_json_schema(), fmt)
    else:
        emit(
            [
                {"kind": s.kind, "summary": gettext(s.summary), "http": f"POST /api/v1{s.path}"}
                for s in SPECS
            ],
            fmt,
        )
