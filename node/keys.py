"""The node's own signing key: created with the node directory, kept readable by its owner."""

from __future__ import annotations

from pathlib import Path

from federation.suite import SigningKey, public_pem, save_key
from node.config import KEY_FILE, PUBLIC_KEY_FILE
from node.errors import ConfigError


def generate_node_key(directory: Path) -> SigningKey:
    """Create DIR/node.key (0600) and DIR/node.pub; refuse to replace an existing key."""
    if (directory / KEY_FILE).exists():
        raise ConfigError(f"{directory / KEY_FILE} exists: a node's key is replaced by rotation")
    key = SigningKey.generate()
    save_key(key, directory / KEY_FILE)
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public))
    return key
