"""The node's keys and the rules that govern them: its own signing key and its NATS identity
(created with the node directory, kept readable by its owner), who signs a key document and
what a signer may certify, installing a trust chain and switching to a rotated key once it is
certified."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from domain import divisions
from domain.codes import NATIONAL_REGION, Tier, check_region, in_subtree
from domain.i18n import _
from federation.envelope import parse
from federation.errors import FederationError
from federation.keys import ROOT, ROOT_TIERS, build_trust
from federation.nkey import check_public, generate_seed, public_of
from federation.suite import SigningKey, load_key, public_pem, save_key
from federation.transport import Credentials, TLSFiles, inbox
from federation.verify import Trust
from node import config as config_mod
from node.config import KEY_FILE, PUBLIC_KEY_FILE, Config
from node.errors import ConfigError, Listed, said
from node.readonly import Rows, read_only

NEXT_KEY_FILE = "node.key.next"
NEXT_PUBLIC_KEY_FILE = "node.pub.next"
NATS_KEY_FILE = "nats.nk"  # the default of [federation] nats_key
NATS_PUBLIC_FILE = "nats.pub"  # beside the seed: what the certifier certifies with the key


def generate_node_key(directory: Path) -> SigningKey:
    """Create DIR/node.key (0600) and DIR/node.pub, and the node's NATS identity if it has
    none (``generate_nats_key``); refuse to replace an existing key."""
    if (directory / KEY_FILE).exists():
        raise ConfigError(
            _("{file} exists: a node's key is replaced by rotation", file=directory / KEY_FILE)
        )
    key = SigningKey.generate()
    save_key(key, directory / KEY_FILE)
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public))
    if not nats_key_file(directory).exists():
        generate_nats_key(directory)
    return key


# -- the node's NATS identity ----------------------------------------------------------------
def nats_key_file(directory: Path) -> Path:
    """Where the node's nkey seed is: ``[federation] nats_key`` of its node.toml (read as
    written, before the configuration may be complete), relative to the node directory."""
    name = NATS_KEY_FILE
    try:
        text = (directory / config_mod.CONFIG_FILE).read_text(encoding="utf-8")
        name = str(tomllib.loads(text).get("federation", {}).get("nats_key", NATS_KEY_FILE))
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        pass
    return directory / name


def nats_public_file(seed_file: Path) -> Path:
    return seed_file.with_name(NATS_PUBLIC_FILE)


def generate_nats_key(directory: Path) -> str:
    """Create the node's NATS identity: an nkey user seed (0600, never overwritten) and
    nats.pub beside it. A key of its own, never the signing key: the server chooses what a
    NATS client signs. Returns the public key ("U...")."""
    path = nats_key_file(directory)
    seed = generate_seed()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(_("{file} exists: the node has its NATS identity", file=path)) from None
    with os.fdopen(fd, "wb") as f:
        f.write(seed + b"\n")
        f.flush()
        os.fsync(f.fileno())
    public = public_of(seed)
    nats_public_file(path).write_text(public + "\n", encoding="ascii")
    return public


def load_nats_seed(path: Path) -> bytes:
    """The nkey seed in ``path``; ConfigError if it is missing, not a user seed, or readable
    by others."""
    try:
        seed = path.read_bytes().strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            _(
                "{file}: the node has no NATS identity; create it with `anjian keys generate "
                "{directory}` and have the certifier certify nats.pub with the node's key",
                file=path,
                directory=path.parent,
            )
        ) from None
    except OSError as e:
        raise ConfigError(_("{file}: {error}", file=path, error=said(e))) from None
    if mode & 0o077:
        raise ConfigError(
            _("{file}: the NATS key must be readable by its owner only (chmod 600)", file=path)
        )
    try:
        public_of(seed)
    except FederationError as e:
        raise ConfigError(_("{file}: {error}", file=path, error=said(e))) from None
    return seed


def nats_public(config: Config) -> str:
    """The node's NATS user public key, from its seed."""
    return public_of(load_nats_seed(config.directory / config.federation.nats_key))


def read_nats_public(path: Path) -> str:
    """A NATS user public key from a file (nats.pub: "U..." on one line)."""
    try:
        return check_public(path.read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError, FederationError) as e:
        raise ConfigError(_("{file}: {error}", file=path, error=said(e))) from None


def credentials(config: Config) -> Credentials:
    """How this node presents itself to a NATS server (its parent's, its own tier's): its
    NATS identity (anonymous if it has none yet: an authorising server refuses it, saying
    so), replies under ``_INBOX.<origin>``, and TLS as ``[federation]`` says."""
    path = config.directory / config.federation.nats_key
    seed = load_nats_seed(path) if path.exists() else None
    f = config.federation
    tls = None
    if f.tls_ca is not None:
        tls = TLSFiles(
            str(config.directory / f.tls_ca),
            str(config.directory / f.tls_cert) if f.tls_cert else None,
            str(config.directory / f.tls_key) if f.tls_key else None,
        )
    elif f.tls_cert is not None:
        raise ConfigError(_("[federation] tls_cert needs tls_ca (the CA that signed the servers)"))
    return Credentials(seed=seed, inbox=inbox(config.node.origin), tls=tls)


@dataclass(frozen=True)
class Signer:
    """Who signs a key document: a node's key (its origin and area), or the offline root."""

    key: SigningKey
    origin: str
    region: str


def signer(directory: Path | None, root_key: Path | None) -> Signer:
    """A node directory's key, or the offline root key: exactly one of them."""
    if (directory is None) == (root_key is None):
        raise ConfigError(_("give the certifier: a node directory, or --root-key for the root"))
    try:
        if root_key is not None:
            return Signer(load_key(root_key), ROOT, NATIONAL_REGION)
        assert directory is not None
        config = config_mod.load(directory)
        return Signer(load_key(config.key_file), config.node.origin, config.node.region)
    except FederationError as e:
        raise ConfigError(said(e)) from None


def check_certification(by: Signer, origin: str, region: str, tier: str) -> None:
    """Refuse what the signer may not certify: the root certifies only national, backup and
    provincial keys; a node only the areas strictly below its own; and an origin is the
    division code of its area (but for a backup centre)."""
    if by.origin == ROOT and tier not in ROOT_TIERS:
        raise ConfigError(
            _("the root certifies national, backup and provincial keys, not a {tier}", tier=tier)
        )
    if by.origin != ROOT and (region == by.region or not in_subtree(by.region, region)):
        raise ConfigError(
            _("{region} is outside the certifier's area {area}", region=region, area=by.region)
        )
    if tier != Tier.BACKUP and origin != region:
        raise ConfigError(
            _(
                "origin {origin} must be the division code of its area {region}",
                origin=origin,
                region=region,
            )
        )
    try:  # a division of GB/T 2260 (or one the signing node lists in [divisions] extra)
        check_region(Tier(tier), region, divisions.declared())
    except ValueError as e:
        raise ConfigError(_("{region}: {error}", region=region, error=said(e))) from None


def install_chain(config: Config, root: bytes, documents: list[bytes]) -> tuple[Trust, str | None]:
    """Install documents of the node's trust chain (its certification and its certifiers' up to
    the root) in its trust directory, after checking that they chain with what is there; if one
    certifies the key prepared by a rotation, switch the node to it. Returns the trust and the
    key id switched to (None if none)."""
    trust_dir = config.trust_dir
    present = sorted(trust_dir.glob("*.doc")) if trust_dir.exists() else []
    trust, problems = build_trust(root, [p.read_bytes() for p in present] + documents)
    if problems:
        raise ConfigError(Listed(problems))
    trust_dir.mkdir(exist_ok=True)
    (trust_dir / "root.pub").write_bytes(public_pem(root))
    for raw in documents:
        (trust_dir / f"{hashlib.sha256(raw).hexdigest()[:16]}.doc").write_bytes(raw)
    return trust, switch_to_next_key(config, trust)


def switch_to_next_key(config: Config, trust: Trust) -> str | None:
    """Once the key a rotation prepared is certified, it becomes node.key (the old one is kept,
    retired, beside it). Returns its key id, or None while it is not certified."""
    nxt = config.directory / NEXT_KEY_FILE
    if not nxt.exists():
        return None
    try:
        new = load_key(nxt)
    except FederationError as e:
        raise ConfigError(said(e)) from None
    if not any(g.key_id == new.key_id for g in trust.keys_of(config.node.origin)):
        return None
    old = load_key(config.key_file)
    config.key_file.rename(config.directory / f"node.key.{old.key_id}.retired")
    nxt.rename(config.key_file)
    config.public_key_file.write_bytes(public_pem(new.public))
    return new.key_id


def prepare_rotation(directory: Path) -> SigningKey:
    """A new key (node.key.next, node.pub.next) for the certifier to certify."""
    nxt = directory / NEXT_KEY_FILE
    if nxt.exists():
        raise ConfigError(_("{file} already exists: install its certification first", file=nxt))
    key = SigningKey.generate()
    save_key(key, nxt)
    (directory / NEXT_PUBLIC_KEY_FILE).write_bytes(public_pem(key.public))
    return key


def key_documents(config: Config) -> list[bytes]:
    """Key documents in the node's trust chain directory and recorded in its log (read-only)."""
    docs = [p.read_bytes() for p in sorted(config.trust_dir.glob("*.doc"))]
    if config.store.backend == "sqlite" and not config.sqlite_file.exists():
        return docs
    with read_only(config) as (rows, order):
        for row in rows(
            "SELECT state FROM stored_events"
            f" WHERE topic = 'keys.document_recorded/1' ORDER BY {order}"
        ):
            docs.append(base64.b64decode(json.loads(bytes(row["state"]))["document"]))
    return docs


def documents_from_above(rows: Rows) -> list[bytes]:
    """Certifications, rotations and revocations recorded by the tiers above, as they came
    down (each verified on its own signature when it arrived)."""
    return [
        base64.b64decode(parse(bytes(r["raw"])).payload["document"])
        for r in rows(
            "SELECT raw FROM downward WHERE verified > 0 AND type = 'keys.document_recorded/1'"
            " ORDER BY origin, seq"
        )
    ]
