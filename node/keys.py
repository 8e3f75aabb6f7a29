"""The node's keys and the rules that govern them: its own signing key (created with the node
directory, kept readable by its owner), who signs a key document and what a signer may certify,
installing a trust chain and switching to a rotated key once it is certified."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from domain.codes import NATIONAL_REGION, Tier, in_subtree
from federation.envelope import parse
from federation.errors import FederationError
from federation.keys import ROOT, ROOT_TIERS, build_trust
from federation.suite import SigningKey, load_key, public_pem, save_key
from federation.verify import Trust
from node import config as config_mod
from node.config import KEY_FILE, PUBLIC_KEY_FILE, Config
from node.errors import ConfigError
from node.readonly import Rows, read_only

NEXT_KEY_FILE = "node.key.next"
NEXT_PUBLIC_KEY_FILE = "node.pub.next"


def generate_node_key(directory: Path) -> SigningKey:
    """Create DIR/node.key (0600) and DIR/node.pub; refuse to replace an existing key."""
    if (directory / KEY_FILE).exists():
        raise ConfigError(f"{directory / KEY_FILE} exists: a node's key is replaced by rotation")
    key = SigningKey.generate()
    save_key(key, directory / KEY_FILE)
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public))
    return key


@dataclass(frozen=True)
class Signer:
    """Who signs a key document: a node's key (its origin and area), or the offline root."""

    key: SigningKey
    origin: str
    region: str


def signer(directory: Path | None, root_key: Path | None) -> Signer:
    """A node directory's key, or the offline root key: exactly one of them."""
    if (directory is None) == (root_key is None):
        raise ConfigError("give the certifier: a node directory, or --root-key for the root")
    try:
        if root_key is not None:
            return Signer(load_key(root_key), ROOT, NATIONAL_REGION)
        assert directory is not None
        config = config_mod.load(directory)
        return Signer(load_key(config.key_file), config.node.origin, config.node.region)
    except FederationError as e:
        raise ConfigError(str(e)) from None


def check_certification(by: Signer, origin: str, region: str, tier: str) -> None:
    """Refuse what the signer may not certify: the root certifies only national, backup and
    provincial keys; a node only the areas strictly below its own; and an origin is the
    division code of its area (but for a backup centre)."""
    if by.origin == ROOT and tier not in ROOT_TIERS:
        raise ConfigError(f"the root certifies national, backup and provincial keys, not a {tier}")
    if by.origin != ROOT and (region == by.region or not in_subtree(by.region, region)):
        raise ConfigError(f"{region} is outside the certifier's area {by.region}")
    if tier != Tier.BACKUP and origin != region:
        raise ConfigError(f"origin {origin} must be the division code of its area {region}")


def install_chain(config: Config, root: bytes, documents: list[bytes]) -> tuple[Trust, str | None]:
    """Install documents of the node's trust chain (its certification and its certifiers' up to
    the root) in its trust directory, after checking that they chain with what is there; if one
    certifies the key prepared by a rotation, switch the node to it. Returns the trust and the
    key id switched to (None if none)."""
    trust_dir = config.trust_dir
    present = sorted(trust_dir.glob("*.doc")) if trust_dir.exists() else []
    trust, problems = build_trust(root, [p.read_bytes() for p in present] + documents)
    if problems:
        raise ConfigError("; ".join(str(p) for p in problems))
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
        raise ConfigError(str(e)) from None
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
        raise ConfigError(f"{nxt} already exists: install its certification first")
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
