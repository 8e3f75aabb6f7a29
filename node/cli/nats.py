"""``anjian nats``: the NATS side of a tier: its server's configuration from the certified
hierarchy (who may connect, and what each may do: node.replication.natsauth)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from domain.i18n import _
from node import config as config_mod
from node.cli.base import NODE_DIR, emit, format_option, user_errors
from node.errors import ConfigError
from node.replication.natsauth import CONFIG_FILE, ServerTLS, reload_server, write_config
from node.replication.natsd import nats_server_binary

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def nats() -> None:
    """This tier's NATS server: configuration and credentials."""


@nats.command("config")
@NODE_DIR
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write it (default: [federation] server_dir, else DIR/nats-server).",
)
@click.option("--listen", help="HOST:PORT to listen on (default: from [federation] nats).")
@click.option("--tls-cert", type=FILE, help="The server's certificate (chain): TLS on.")
@click.option("--tls-key", type=FILE, help="The server's private key.")
@click.option("--tls-ca", type=FILE, help="The CA that signs the clients' certificates.")
@click.option(
    "--verify-clients",
    is_flag=True,
    help="Mutual TLS: refuse a client without a certificate signed by --tls-ca.",
)
@click.option(
    "--save",
    is_flag=True,
    help="Record --out as [federation] server_dir in node.toml, so the serving node keeps "
    "the authorisation current.",
)
@click.option("--reload", is_flag=True, help="Have the running server reload it (SIGHUP).")
@format_option()
def nats_config(
    directory: Path,
    out: Path | None,
    listen: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    verify_clients: bool,
    save: bool,
    reload: bool,
    fmt: str,
) -> None:
    """Write the configuration of this tier's nats-server (city and above) from the node's
    certified hierarchy: the listen address, JetStream store, pid file and payload limit; an
    authorisation file with one nkey user per certified NATS identity (this node: everything;
    each node of its area: its own subjects and consumers only; the other centre: the
    archive); no anonymous access; TLS if asked. Written atomically (0600); running it again
    gives the same files. Prints whom it authorised and whom it left out, and why.

    While the node serves with [federation] server_dir set, it rewrites the authorisation and
    has the server reload it whenever a child is certified or revoked.

    \b
    Example:
      anjian nats config ./city --out /srv/nats-city --save
      nats-server -c /srv/nats-city/nats-server.conf
    """
    with user_errors():
        config = config_mod.load(directory)
        if (tls_cert is None) != (tls_key is None):
            raise click.UsageError(str(_("--tls-cert and --tls-key go together")))
        if verify_clients and (tls_ca is None or tls_cert is None):
            raise click.UsageError(
                str(_("--verify-clients needs --tls-ca (and --tls-cert, --tls-key)"))
            )
        tls = None
        if tls_cert is not None and tls_key is not None:
            tls = ServerTLS(tls_cert, tls_key, tls_ca, verify_clients)
        configured = config.federation.server_dir
        target = out or (directory / configured if configured else directory / "nats-server")
        report = write_config(config, target, listen, tls)
        target = target.resolve()
        if configured is None or (directory / configured).resolve() != target:
            line = f'server_dir = "{target}"'
            if save:
                path = directory / config_mod.CONFIG_FILE
                path.write_text(
                    set_federation(path.read_text(encoding="utf-8"), "server_dir", str(target)),
                    encoding="utf-8",
                )
                config_mod.load(directory)  # still valid
                report["saved"] = line
            else:
                report["node_toml"] = str(
                    _(
                        "add to [federation] of {file}: {line} (or run again with --save), so"
                        " the serving node keeps it current",
                        file=str(directory / config_mod.CONFIG_FILE),
                        line=line,
                    )
                )
        if reload:
            report["reloaded"] = reload_server(target)
        report["start"] = f"{server_program()} -c {target / CONFIG_FILE}"
        emit(report, fmt)
        for x in report["left_out"]:
            click.echo(
                _("left out: {origin}: {reason}", origin=x["origin"], reason=x["reason"]),
                err=True,
            )


def set_federation(text: str, key: str, value: str) -> str:
    """node.toml's text with ``key = "value"`` in its [federation] section (replacing the
    key's line if there is one; the section added if there is none)."""
    line = f"{key} = {_toml_string(value)}"
    sections = re.split(r"(?m)^(?=\[)", text)
    for i, section in enumerate(sections):
        if section.startswith("[federation]"):
            pattern = re.compile(rf"(?m)^\s*{re.escape(key)}\s*=.*$")
            if pattern.search(section):
                sections[i] = pattern.sub(lambda _: line, section, count=1)
            else:
                head, _, rest = section.partition("\n")
                sections[i] = f"{head}\n{line}\n{rest}"
            return "".join(sections)
    return text.rstrip("\n") + f"\n\n[federation]\n{line}\n"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_program() -> str:
    """The nats-server to start it with: the one installed with anjian, else its name."""
    try:
        return nats_server_binary()
    except ConfigError:
        return "nats-server"
