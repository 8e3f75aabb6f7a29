"""``anjian nats``: the NATS side of a tier (its server's configuration from the certified
hierarchy)."""

from __future__ import annotations

import click


@click.group()
def nats() -> None:
    """This tier's NATS server: configuration and credentials."""
