"""`anjian users ...`: the HTTP API's users and their bearer tokens."""

from __future__ import annotations

from pathlib import Path

import click

from node import config as config_mod
from node.cli.base import NODE_DIR, emit, user_errors
from node.users import Role, add_user, list_users, remove_user


@click.group()
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
