"""`anjian keys ...`: the node's signing key and NATS identity, the national root key,
certifications, revocations, rotation, and installing a trust chain."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from domain.codes import Tier
from domain.i18n import _
from federation.keys import certify, revoke
from federation.suite import SigningKey, key_id, public_pem, save_key
from node import config as config_mod
from node.cli.base import NODE_DIR, emit, format_option, open_node, public_key, user_errors, warn
from node.errors import ConfigError
from node.keys import (
    NATS_PUBLIC_FILE,
    NEXT_PUBLIC_KEY_FILE,
    check_certification,
    generate_nats_key,
    generate_node_key,
    install_chain,
    nats_key_file,
    nats_public_file,
    prepare_rotation,
    read_nats_public,
    signer,
)


@click.group()
def keys() -> None:
    """The node's signing key and NATS identity, certifications and the root key."""


@keys.command("generate")
@NODE_DIR
@format_option()
def keys_generate(directory: Path, fmt: str) -> None:
    """Create what the node lacks of its keys: its Ed25519 signing key (node.key, 0600, and
    node.pub) and its NATS identity (an nkey seed, [federation] nats_key, default nats.nk,
    0600, and nats.pub beside it). The certifier certifies node.pub and nats.pub together.

    \b
    Example (a node made before NATS identities):
      anjian keys generate ./county
    """
    with user_errors():
        config = config_mod.load(directory)
        made: dict[str, object] = {}
        if not config.key_file.exists():
            key = generate_node_key(directory)
            made |= {"key_id": key.key_id, "public_key_file": str(config.public_key_file)}
        seed = nats_key_file(directory)
        if not seed.exists():
            made |= {"nats": generate_nats_key(directory)}
        if not made:
            raise ConfigError(
                _(
                    "{directory} has its keys: node.key is replaced by rotation"
                    " (anjian keys rotate)",
                    directory=str(directory),
                )
            )
        if seed.exists():
            made |= {"nats_key_file": str(seed), "nats_public_file": str(nats_public_file(seed))}
        emit(made, fmt)


def _next_position(directory: Path | None) -> int:
    """Where in the certifier's log the document is recorded (0 for the offline root): its key
    must be valid there."""
    if directory is None:
        return 0
    with open_node(directory) as node:
        return int(node.log.tree()[0]) + 1


def _record_if_node(directory: Path | None, doc: bytes) -> None:
    if directory is not None:
        with open_node(directory) as node:
            node.record_key_document(doc, getpass.getuser())


@keys.command("root-init")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@format_option()
def keys_root_init(out: Path, fmt: str) -> None:
    """Create the national root key pair, offline: OUT/root.key (0600) and OUT/root.pub."""
    with user_errors():
        out.mkdir(parents=True, exist_ok=True)
        if (out / "root.key").exists():
            raise ConfigError(_("{path} exists", path=str(out / "root.key")))
        key = SigningKey.generate()
        save_key(key, out / "root.key")
        (out / "root.pub").write_bytes(public_pem(key.public))
        emit({"key_id": key.key_id, "public_key_file": str(out / "root.pub")}, fmt)


@keys.command("certify")
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--root-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign with the offline root key instead of a node's key.",
)
@click.option("--origin", required=True)
@click.option("--region", required=True)
@click.option("--tier", required=True, type=click.Choice([t.value for t in Tier]))
@click.option(
    "--public",
    "--key",
    "public_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The node's public key (node.pub).",
)
@click.option(
    "--nats-key",
    "nats_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The node's NATS identity (nats.pub); default: nats.pub beside --public, if there.",
)
@click.option("--from-seq", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option()
def keys_certify(
    directory: Path | None,
    root_key: Path | None,
    origin: str,
    region: str,
    tier: str,
    public_file: Path,
    nats_file: Path | None,
    from_seq: int,
    out: Path,
    fmt: str,
) -> None:
    """Certify a key of the tier below, inside the certifier's own area, with the node's NATS
    identity (which its parent's NATS server authorises). From a node directory the
    certification is also recorded in that node's log.

    \b
    Example (a province certifies one of its counties):
      anjian keys certify ./province --origin 130102 --region 130102 --tier county \\
        --public county/node.pub --nats-key county/nats.pub --out 130102.cert
    """
    with user_errors():
        by = signer(directory, root_key)
        public = public_key(public_file)
        check_certification(by, origin, region, tier)
        beside = public_file.with_name(NATS_PUBLIC_FILE)
        if nats_file is None and beside.exists():
            nats_file = beside
        nats = read_nats_public(nats_file) if nats_file is not None else None
        doc = certify(
            by.key,
            by.origin,
            origin=origin,
            region=region,
            tier=tier,
            public=public,
            from_seq=from_seq,
            at_seq=_next_position(directory),
            nats=nats,
        )
        _record_if_node(directory, doc)
        out.write_bytes(doc)
        emit(
            {
                "certification": str(out),
                "origin": origin,
                "key_id": key_id(public),
                "from_seq": from_seq,
                "nats": nats,
            },
            fmt,
        )
        if nats is None:
            warn(
                _(
                    "no NATS identity certified (no --nats-key, no nats.pub beside the"
                    " key): the node cannot connect to its parent's NATS until it is"
                )
            )


@keys.command("revoke")
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--root-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--origin", required=True)
@click.option("--key-id", "revoked", required=True, help="The key id to revoke.")
@click.option(
    "--last-seq",
    required=True,
    type=click.IntRange(min=0),
    help="The last sequence of the origin the key stays valid for.",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option()
def keys_revoke(
    directory: Path | None,
    root_key: Path | None,
    origin: str,
    revoked: str,
    last_seq: int,
    out: Path,
    fmt: str,
) -> None:
    """Revoke a key from a log position on (by its certifier, or the root)."""
    with user_errors():
        by = signer(directory, root_key)
        doc = revoke(
            by.key,
            by.origin,
            origin=origin,
            key=revoked,
            last_seq=last_seq,
            at_seq=_next_position(directory),
        )
        _record_if_node(directory, doc)
        out.write_bytes(doc)
        emit(
            {"revocation": str(out), "origin": origin, "key_id": revoked, "last_seq": last_seq}, fmt
        )


@keys.command("install")
@NODE_DIR
@click.argument(
    "documents",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--root-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@format_option()
def keys_install(directory: Path, documents: tuple[Path, ...], root_key: Path, fmt: str) -> None:
    """Install the node's trust chain (its certification and its certifiers' up to the root).
    Installing a certification of a key prepared by `anjian keys rotate` switches the node to
    it (restart a running node)."""
    with user_errors():
        config = config_mod.load(directory)
        raws = [p.read_bytes() for p in documents]
        trust, switched = install_chain(config, public_key(root_key), raws)
        mine = [g for g in trust.keys_of(config.node.origin)]
        emit(
            {
                "installed": len(documents),
                "own_keys": [
                    {"key_id": g.key_id, "from_seq": g.from_seq, "until_seq": g.until_seq}
                    for g in mine
                ],
                "switched_to": switched,
            },
            fmt,
        )


@keys.command("rotate")
@NODE_DIR
@format_option()
def keys_rotate(directory: Path, fmt: str) -> None:
    """Prepare a new node key (node.key.next): give node.pub.next, nats.pub (the NATS identity
    stays) and the printed from_seq to the certifier, then install its certification (and the
    old key's revocation)."""
    with open_node(directory) as node:
        key = prepare_rotation(directory)
        size = node.status()["signed_log"]["envelopes"]
        emit(
            {
                "public_key_file": str(directory / NEXT_PUBLIC_KEY_FILE),
                "key_id": key.key_id,
                "from_seq": size + 1,
                "old_key_id": node.key.key_id,
                "old_last_seq": size,
                "nats_public_file": str(nats_public_file(nats_key_file(directory))),
            },
            fmt,
        )


@keys.command("record")
@NODE_DIR
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@format_option()
def keys_record(directory: Path, document: Path, fmt: str) -> None:
    """Record a key document this node signed, or (at the national centre, with
    trust/root.pub installed) one the root signed, in this node's log."""
    with open_node(directory) as node:
        emit(node.record_key_document(document.read_bytes(), getpass.getuser()), fmt)
