"""``anjian tls``: a small private certificate authority and per-node certificates for a
deployment that has no PKI of its own (an existing PKI is preferred)."""

from __future__ import annotations

from pathlib import Path

import click

from domain.i18n import _, gettext
from node.cli.base import emit, format_option, user_errors
from node.tls import CA_DAYS, CERT_DAYS, PREFERRED, describe, issue, make_ca

DIRECTORY = click.Path(file_okay=False, path_type=Path)


@click.group()
def tls() -> None:
    """Certificates for HTTPS and NATS over TLS, from a small private CA (ECDSA P-256).

    This is for deployments without a PKI of their own. Where your organisation has a PKI,
    have it issue the certificates instead: node.toml takes any PEM certificate and key.

    \b
    Example: a CA, and a certificate for a county node's API reached as county.example or
    10.1.2.3:
      anjian tls ca ./ca
      anjian tls issue ./ca county --host county.example --host 10.1.2.3 --out ./county/tls
    then in county/node.toml:
      [http]
      host = "0.0.0.0"
      tls_cert = "tls/county.crt"
      tls_key = "tls/county.key"
    """


@tls.command("ca")
@click.argument("directory", type=DIRECTORY)
@click.option("--name", default="anjian private CA", show_default=True, help="Its common name.")
@click.option("--days", default=CA_DAYS, show_default=True, type=click.IntRange(1, 36500))
@format_option()
def tls_ca(directory: Path, name: str, days: int, fmt: str) -> None:
    """Make a private CA in DIRECTORY: ca.crt (give it to every client and server that must
    trust the certificates it issues) and ca.key (0600; keep it off the nodes, e.g. on the
    machine of whoever issues certificates). An existing CA is never overwritten.

    \b
    Example:
      anjian tls ca ./ca
    """
    with user_errors():
        cert, key = make_ca(directory, name, days)
    emit({**describe(cert), "key": str(key)}, fmt)
    _preferred()


@tls.command("issue")
@click.argument("ca_directory", metavar="CA_DIR", type=DIRECTORY)
@click.argument("name")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="A DNS name or IP address the server is reached by (repeat for each); "
    "makes it a server certificate.",
)
@click.option("--client", is_flag=True, help="Also a client certificate (mutual TLS).")
@click.option(
    "--out",
    required=True,
    type=DIRECTORY,
    help="Where NAME.crt and NAME.key (0600) go, e.g. the node directory's tls/.",
)
@click.option("--days", default=CERT_DAYS, show_default=True, type=click.IntRange(1, 3650))
@format_option()
def tls_issue(
    ca_directory: Path,
    name: str,
    hosts: tuple[str, ...],
    client: bool,
    out: Path,
    days: int,
    fmt: str,
) -> None:
    """Issue NAME.crt and NAME.key signed by the CA in CA_DIR: a server certificate for each
    --host (HTTPS, a NATS server), a client certificate with --client (mutual TLS), or both.
    Nothing existing is overwritten: renew under a new NAME or into a new directory.

    \b
    Examples:
      anjian tls issue ./ca county --host county.example --host 10.1.2.3 --out ./county/tls
      anjian tls issue ./ca county-nats --client --out ./county/tls
    """
    with user_errors():
        cert, key = issue(
            ca_directory, name, hosts, out, client=client, server=bool(hosts), days=days
        )
    emit({**describe(cert), "key": str(key)}, fmt)
    click.echo(
        _(
            "for the node's HTTPS: in node.toml [http] set tls_cert and tls_key to these files "
            "(relative to the node directory); clients trust the CA's ca.crt"
        ),
        err=True,
    )
    _preferred()


def _preferred() -> None:
    preferred = gettext(PREFERRED) if isinstance(PREFERRED, str) else PREFERRED
    click.echo(_("note: {message}", message=preferred), err=True)
