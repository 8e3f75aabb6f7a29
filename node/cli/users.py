"""`anjian users ...`: the HTTP API's users, their bearer tokens (with an expiry) and console
passwords, and the node's access log. Every change is written to the access log."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from domain.i18n import _
from node import access
from node import config as config_mod
from node.cli.base import NODE_DIR, emit, format_option, user_errors, warn, when
from node.errors import ConfigError
from node.users import Role, add_user, list_users, remove_user, rotate_token, set_password


@click.group()
def users() -> None:
    """Manage the API's users: bearer tokens (they expire after [http] token_days), console
    passwords, and the access log of who did what.

    \b
    Example:
      anjian users add ./county clerk --role writer      # prints the token, once
      anjian users password ./county clerk               # asks for a console password
      anjian users rotate ./county clerk                 # a new token; the old one stops
      anjian users log ./county --since 2026-12-01 --user clerk
    """


def _who() -> str:
    """Who changes users at the command line: the login name of the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _changed(directory: Path, action: str, name: str, **detail: Any) -> None:
    try:
        access.record(directory, _who(), action, target=name, **detail)
    except OSError as e:  # the change stands; whoever made it must know the log lacks it
        warn(
            _(
                "the access log in {directory} could not be written: {error}",
                directory=str(directory),
                error=str(e),
            )
        )


ROLE = click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.READER.value,
    show_default=True,
)


@users.command("add")
@NODE_DIR
@click.argument("name")
@ROLE
@format_option("text")
def users_add(directory: Path, name: str, role: str, fmt: str) -> None:
    """Add a user and print their token (shown only this once); it expires after
    [http] token_days (90 by default)."""
    with user_errors():
        cfg = config_mod.load(directory)
        token = add_user(cfg.users_file, name, Role(role), days=cfg.http.token_days)
        _changed(cfg.directory, "user.add", name, role=role)
        _token(directory, cfg.users_file, name, token, fmt)


@users.command("token")
@NODE_DIR
@click.argument("name")
@ROLE
@format_option("text")
def users_token(directory: Path, name: str, role: str, fmt: str) -> None:
    """Give NAME a token, however often it runs: adds the user with ROLE if new, else issues
    them a new token (the old one stops working within a second). A user of another role is
    refused: change a role with remove and add.

    \b
    Example (a script, or the README's tour run twice):
      TOKEN=$(anjian users token ./county clerk --role writer)
    """
    with user_errors():
        cfg = config_mod.load(directory)
        held = next((u for u in list_users(cfg.users_file) if u["name"] == name), None)
        if held is None:
            token = add_user(cfg.users_file, name, Role(role), days=cfg.http.token_days)
            _changed(cfg.directory, "user.add", name, role=role)
        elif held["role"] != role:
            raise ConfigError(
                _(
                    "user {name!r} exists with the role {held}, not {role}; nothing was changed",
                    name=name,
                    held=held["role"],
                    role=role,
                )
            )
        else:
            token = rotate_token(cfg.users_file, name, days=cfg.http.token_days)
            _changed(cfg.directory, "user.rotate", name)
        _token(directory, cfg.users_file, name, token, fmt)


@users.command("rotate")
@NODE_DIR
@click.argument("name")
@format_option("text")
def users_rotate(directory: Path, name: str, fmt: str) -> None:
    """Issue a user a new token and print it (shown only this once). The old token stops
    working within a second on a running server.

    \b
    Example:
      anjian users rotate ./county clerk
    """
    with user_errors():
        cfg = config_mod.load(directory)
        token = rotate_token(cfg.users_file, name, days=cfg.http.token_days)
        _changed(cfg.directory, "user.rotate", name)
        _token(directory, cfg.users_file, name, token, fmt)


def _token(directory: Path, users_file: Path, name: str, token: str, fmt: str) -> None:
    """The new token: alone on stdout (a script takes it as it is), and on stderr what to do
    with it; or, with ``--format json``, as JSON with the user's role and expiry."""
    user = next(u for u in list_users(users_file) if u["name"] == name)
    if fmt == "json":
        emit(
            {
                "name": name,
                "role": user["role"],
                "token": token,
                "token_expires": user["token_expires"],
            }
        )
        return
    click.echo(token)
    click.echo(
        _(
            "the token of {name} is shown only this once: give it to {name}, who sends it to"
            " the API as the header Authorization: Bearer TOKEN. It expires {expires}"
            " (then: anjian users rotate {directory} {name})",
            name=name,
            expires=user["token_expires"],
            directory=str(directory),
        ),
        err=True,
    )


@users.command("password")
@NODE_DIR
@click.argument("name")
def users_password(directory: Path, name: str) -> None:
    """Set a user's password for the web console (argon2id; at least 12 characters). It is
    asked for at the terminal, or read as one line from standard input; never an argument.
    The user's open console sessions end.

    \b
    Example:
      anjian users password ./county clerk
    """
    with user_errors():
        cfg = config_mod.load(directory)
        if sys.stdin.isatty():
            password = click.prompt(
                str(_("password for {name}", name=name)),
                hide_input=True,
                confirmation_prompt=True,
                err=True,
            )
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise ConfigError(_("no password on standard input (one line is read)"))
        set_password(cfg.users_file, name, password)
        _changed(cfg.directory, "user.password", name)
    click.echo(_("password set for {name}; their console sessions end", name=name), err=True)


@users.command("list")
@NODE_DIR
@format_option()
def users_list(directory: Path, fmt: str) -> None:
    """Each user: role, when their token expires (or expired), whether they have a password."""
    with user_errors():
        emit(list_users(config_mod.load(directory).users_file), fmt)


@users.command("remove")
@NODE_DIR
@click.argument("name")
@format_option("text")
def users_remove(directory: Path, name: str, fmt: str) -> None:
    """Remove a user; their token and console sessions stop working within a second on a
    running server."""
    with user_errors():
        cfg = config_mod.load(directory)
        role = next((u["role"] for u in list_users(cfg.users_file) if u["name"] == name), None)
        remove_user(cfg.users_file, name)
        _changed(cfg.directory, "user.remove", name)
    if fmt == "json":
        emit({"removed": name, "role": role})
    else:
        click.echo(
            _(
                "removed the user {name} ({role}) from {directory}: their token and console"
                " sessions stop working within a second on a running server",
                name=name,
                role=role,
                directory=str(directory),
            )
        )


@users.command("log")
@NODE_DIR
@click.option("--since", help="From this time (ISO 8601; a bare date is China time).")
@click.option("--user", "user", help="Only this user's actions.")
@click.option(
    "--action",
    help="Only this action: record, export, login, logout, user.add, user.remove, "
    "user.rotate, user.password.",
)
@format_option()
def users_log(
    directory: Path, since: str | None, user: str | None, action: str | None, fmt: str
) -> None:
    """Print the access log, oldest first: who did what (records, exports, logins and
    logouts, changes of users), when (China time), from where, with what result.

    \b
    Example: failed logins since the first of December:
      anjian users log ./county --since 2026-12-01 --action login
    """
    start = when(since, "since")
    with user_errors():
        cfg = config_mod.load(directory)
        entries, bad = access.read(cfg.directory, start, user, action)
    emit(entries, fmt)
    if bad:
        warn(_("{count} unreadable line(s) of the access log were skipped", count=bad))
