"""The ``anjian`` command line: one click group, JSON on stdout, errors on stderr with a
non-zero exit."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from domain.codes import Tier
from domain.commands import BY_KIND, SPECS
from domain.errors import DomainError, Invalid
from federation.errors import FederationError
from federation.suite import key_id, load_public
from federation.verify import Grant, Trust
from node import config as config_mod
from node.audit import audit_node
from node.errors import ConfigError
from node.keys import generate_node_key
from node.service import Node
from node.users import Role, add_user, list_users, remove_user


def emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


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
    except DomainError as e:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """anjian: the node software of work-safety supervision bureaus.

    \b
    Example, a county node on the embedded SQLite store:
      anjian init ./county --tier county --region 130102
      anjian users add ./county clerk --role writer
      anjian serve ./county
    """


@main.command()
@NODE_DIR
@click.option("--tier", type=click.Choice([t.value for t in Tier]), required=True)
@click.option(
    "--region",
    required=True,
    help="GB/T 2260 code of the bureau's area (000000: national, backup).",
)
@click.option("--parent", help="NATS URL of the parent tier, e.g. nats://city-host:4222.")
@click.option("--origin", help="Origin id for the node's whole life (default: the region code).")
def init(directory: Path, tier: str, region: str, parent: str | None, origin: str | None) -> None:
    """Create a node directory: configuration and an empty log.

    \b
    Example:
      anjian init ./county --tier county --region 130102 --parent nats://city:4222
    """
    with user_errors():
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(f"{directory} exists and is not empty; choose a new directory")
        if origin is None:
            origin = "backup" if tier == Tier.BACKUP else region
        try:
            section = config_mod.NodeSection(
                origin=origin, tier=Tier(tier), region=region, parent=parent
            )
        except ValidationError as e:
            msgs = [
                f"{'.'.join(map(str, err['loc'])) or 'region'}: "
                + str(err["msg"]).removeprefix("Value error, ")
                for err in e.errors()
            ]
            raise ConfigError("; ".join(msgs)) from None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / config_mod.CONFIG_FILE).write_text(
            config_mod.render(section), encoding="utf-8"
        )
        generate_node_key(directory)
    with open_node(directory) as node:
        emit({"directory": str(directory.resolve()), **node.status()})
    click.echo(
        f"next: anjian users add {directory} NAME --role writer   (then: anjian serve {directory})",
        err=True,
    )


@main.command()
@NODE_DIR
@click.option("--host", help="Override [http] host.")
@click.option("--port", type=int, help="Override [http] port (0: any free port).")
def serve(directory: Path, host: str | None, port: int | None) -> None:
    """Serve the HTTP API until SIGINT or SIGTERM."""
    import uvloop

    from node.http import serve as serve_http

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
            raise ConfigError(f"cannot listen: {e}") from None


@main.command()
@NODE_DIR
@click.argument("kind", type=click.Choice(list(BY_KIND)), metavar="KIND")
@click.option(
    "--json",
    "source",
    type=click.File("rb"),
    required=True,
    help="Command as JSON: a file, or - for stdin.",
)
@click.option("--actor", default=None, help="Who records it (default: your login name).")
@click.option(
    "--id", "target", help='Id of the record the command acts on (or give "id" in the JSON).'
)
def record(directory: Path, kind: str, source: Any, actor: str | None, target: str | None) -> None:
    """Record one command without a server. KIND is one of the command kinds (`anjian kinds`).

    \b
    Example:
      echo '{"name": "某煤矿", "credit_code": "91350100M000100Y43",
             "industry": "coal_mine", "division": "130102"}' |
        anjian record ./county enterprise.register --json - --actor zhang
    """
    raw = source.read()
    with user_errors():
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise Invalid.field("*", f"the input is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise Invalid.field("*", "the input must be a JSON object")
        if "id" in data and not BY_KIND[kind].creates:
            embedded = str(data.pop("id"))
            if target is not None and target != embedded:
                raise Invalid.field("id", f"--id {target} and the JSON's id {embedded} differ")
            target = embedded
    with open_node(directory) as node:
        emit(node.execute(kind, json.dumps(data), user=actor or getpass.getuser(), target=target))


@main.command()
@NODE_DIR
@click.argument("record_id", metavar="ID")
def show(directory: Path, record_id: str) -> None:
    """Print a record (enterprise, accident ...) as it stands, with its history."""
    with open_node(directory) as node:
        emit(node.show(record_id))


@main.command()
@NODE_DIR
def status(directory: Path) -> None:
    """Print the node's origin, tier, region, event count and last log position."""
    with open_node(directory) as node:
        emit(node.status())


@main.command()
@click.argument("kind", required=False, type=click.Choice(list(BY_KIND)), metavar="[KIND]")
def kinds(kind: str | None) -> None:
    """List the command kinds, or print one kind's JSON schema."""
    if kind:
        emit(BY_KIND[kind].model.model_json_schema())
    else:
        emit(
            [{"kind": s.kind, "summary": s.summary, "http": f"POST /api/v1{s.path}"} for s in SPECS]
        )


@main.group()
def keys() -> None:
    """The node's signing key."""


@keys.command("generate")
@NODE_DIR
def keys_generate(directory: Path) -> None:
    """Create the node's Ed25519 key (node.key, 0600) and node.pub, if it has none."""
    with user_errors():
        config_mod.load(directory)
        key = generate_node_key(directory)
        emit({"key_id": key.key_id, "public_key_file": str(directory / config_mod.PUBLIC_KEY_FILE)})


@main.group()
def audit() -> None:
    """Verify a node's signed log: who recorded what, with which key, nothing changed."""


@audit.command("verify")
@NODE_DIR
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The node's public key (PEM), pinned by the auditor.",
)
@click.option(
    "--fast", is_flag=True, help="Authenticate by checkpoints; skip per-event signatures."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(directory: Path, key_file: Path, fast: bool, as_json: bool) -> None:
    """Verify every envelope, the chain, the sequence, the checkpoints, and that every stored
    event matches its envelope. Exit 0 when everything holds; otherwise 1, with the first
    failure per origin.

    \b
    Example:
      anjian audit verify ./county --key county.pub
    """
    with user_errors():
        config = config_mod.load(directory)
        try:
            public = load_public(key_file)
        except FederationError as e:
            raise ConfigError(str(e)) from None
        trust = Trust([Grant(config.node.origin, public, key_id(public))])
        with click.progressbar(
            length=0, label="verifying", file=sys.stderr, hidden=as_json or not sys.stderr.isatty()
        ) as bar:
            report = audit_node(config, trust, signatures=not fast, progress=bar.update)
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
            click.echo(f"ok: {report['events_checked']} events verified ({report['signatures']})")
    sys.exit(0 if report["ok"] else 1)


@main.group()
def readings() -> None:
    """Raw sensor readings: the local store (not the log) and what is derived from it."""


@readings.command("ingest")
@NODE_DIR
@click.argument("site")
@click.option(
    "--json", "source", type=click.File("rb"), required=True, help="Batch as JSON: a file, or -."
)
@click.option("--actor", default=None, help="Who records the derived events (default: your login).")
def readings_ingest(directory: Path, site: str, source: Any, actor: str | None) -> None:
    """Take a batch {"readings": [{"point", "t", "value", "status"}]} for SITE (its code).

    \b
    Example:
      echo '{"readings": [{"point": "CH4-01", "t": "2026-11-29T08:00:00+08:00", "value": 0.42}]}' |
        anjian readings ingest ./county 130102B001 --json -
    """
    raw = source.read()
    with open_node(directory) as node:
        emit(node.ingest(site, raw, user=actor or getpass.getuser()))


@readings.command("prune")
@NODE_DIR
def readings_prune(directory: Path) -> None:
    """Drop raw readings older than [readings] retention_days (the log is never touched)."""
    with open_node(directory) as node:
        emit(node.prune_readings())


@main.group()
def users() -> None:
    """Manage the API's users and their bearer tokens."""


@users.command("add")
@NODE_DIR
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.READER.value,
    show_default=True,
)
def users_add(directory: Path, name: str, role: str) -> None:
    """Add a user and print their token (shown only this once)."""
    with user_errors():
        cfg = config_mod.load(directory)
        click.echo(add_user(cfg.users_file, name, Role(role)))


@users.command("list")
@NODE_DIR
def users_list(directory: Path) -> None:
    with user_errors():
        emit(list_users(config_mod.load(directory).users_file))


@users.command("remove")
@NODE_DIR
@click.argument("name")
def users_remove(directory: Path, name: str) -> None:
    """Remove a user; their token stops working within a second on a running server."""
    with user_errors():
        remove_user(config_mod.load(directory).users_file, name)
