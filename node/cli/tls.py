"""``anjian tls``: a small private certificate authority and per-node certificates for a
deployment that has no PKI of its own (an existing PKI is preferred)."""

from __future__ import annotations

import click


@click.group()
def tls() -> None:
    """Certificates for HTTPS and NATS over TLS."""
