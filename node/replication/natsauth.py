"""Who may do what on a tier's NATS server (docs/architecture.md §6): the nats-server
configuration of a tier made from its certified hierarchy, and kept current while the node
serves.

Every connection authenticates with a NATS identity (an nkey user) that a certification
carries (``subject.nats``); the server lets in only these, none anonymously:

- the tier's own node: everything (it makes the streams and consumers, and answers requests);
- each certified node of the tier's area (its region strictly inside), with a key that is not
  revoked: it publishes only its own upward subjects, asks only its own applied position and
  history, reads only its own replies (``_INBOX.<origin>``), and on ``ANJIAN_DOWN`` makes,
  reads and acknowledges only its own two durable consumers, each pinned to its filter (the
  key documents; its area). It cannot delete or purge a stream, touch another consumer, or
  subscribe to what the tier answers;
- at the national centre the backup centre, and at the backup centre the national centre:
  ``ANJIAN_ARCHIVE`` through their own durable consumers, and nothing else.

``write_config`` writes the server's configuration (listen address, JetStream store, pid file,
payload limit, TLS) and its authorisation file; ``Authoriser`` (a part of a serving node whose
``[federation] server_dir`` is set) rewrites the authorisation when the node's trust changes
and has the server reload it (SIGHUP)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from domain.codes import NATIONAL_REGION, in_subtree
from domain.errors import DomainError
from domain.i18n import Text, _, render
from federation.errors import FederationError
from federation.keys import build_trust
from federation.suite import load_public
from federation.transport import (
    ARCHIVE,
    DOWN,
    DOWN_ALL,
    HISTORY,
    UP,
    applied_subject,
    backup_durable,
    down_area,
    down_durables,
    restore_durable,
)
from federation.verify import Grant, Trust
from node.config import Config
from node.errors import ConfigError
from node.keys import documents_from_above, key_documents, nats_public
from node.readonly import read_only
from node.replication.part import Call, Part, describe
from node.service import Node

log = logging.getLogger("anjian.federation")

CONFIG_FILE = "nats-server.conf"
AUTH_FILE = "authorisation.conf"
PID_FILE = "nats-server.pid"
STORE_DIR = "store"
MAX_PAYLOAD = 1024 * 1024  # bytes: NATS's default, well over [federation] max_envelope
DEFAULT_PORT = 4222
WATCH = 1.0  # seconds between looks at the node's trust while serving

TIER, CHILD, ARCHIVE_READER = "tier", "child", "archive"


@dataclass(frozen=True)
class User:
    """One nkey user of the server: None permissions for everything."""

    nkey: str
    origin: str
    tier: str
    role: str  # TIER, CHILD or ARCHIVE_READER
    publish: tuple[str, ...] | None = None
    subscribe: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LeftOut:
    origin: str
    reason: Text  # why, for a person (read when the summary is made)


@dataclass(frozen=True)
class ServerTLS:
    """The server's TLS: its certificate and key, and with ``verify`` the CA a client's
    certificate must be signed by (mutual TLS: a client without one is refused)."""

    cert: Path
    key: Path
    ca: Path | None = None
    verify: bool = False


# -- the permission table ----------------------------------------------------------------------
def _consumer_api(stream: str, durable: str) -> list[str]:
    """Looking at, reading and acknowledging one durable consumer, and deleting it (a node
    recovering forgets its place)."""
    return [
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.API.CONSUMER.DELETE.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def inbox(origin: str) -> str:
    """The subjects a node's replies come on (its connections' inbox prefix)."""
    return f"_INBOX.{origin}.>"


def child_permissions(origin: str, region: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a certified node of the tier's area may publish and subscribe to: its own uplink
    (with the direct get of its own last message a recovery asks), its own requests, and its
    two downward consumers, each created only with its own filter."""
    documents, area = down_durables(origin)
    publish = [
        f"anjian.up.{origin}.>",
        applied_subject(origin),
        f"{HISTORY}.{origin}",
        f"$JS.API.DIRECT.GET.{UP}.anjian.up.{origin}.>",
        f"$JS.API.CONSUMER.CREATE.{DOWN}.{documents}.{DOWN_ALL}",
        f"$JS.API.CONSUMER.CREATE.{DOWN}.{area}.{down_area(region)}",
        *_consumer_api(DOWN, documents),
        *_consumer_api(DOWN, area),
    ]
    return tuple(publish), (inbox(origin),)


def archive_permissions(origin: str, follows: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the other centre may do: read ANJIAN_ARCHIVE through its own consumers (the
    follower's if it ``follows`` this server's archive, and a restore's)."""
    durables = ([backup_durable(origin)] if follows else []) + [restore_durable(origin)]
    publish = [f"$JS.API.STREAM.INFO.{ARCHIVE}"]
    for durable in durables:
        publish.append(f"$JS.API.CONSUMER.CREATE.{ARCHIVE}.{durable}.anjian.archive.>")
        publish += _consumer_api(ARCHIVE, durable)
    return tuple(publish), (inbox(origin),)


def authorised(
    origin: str, tier: str, region: str, nkey: str, trust: Trust
) -> tuple[list[User], list[LeftOut]]:
    """The users of the server of the tier (``origin``, ``tier``, ``region``) whose own NATS
    identity is ``nkey``, from its trust; and the certified nodes left out, with why."""
    users = [User(nkey, origin, tier, TIER)]
    left: list[LeftOut] = []
    by_origin: dict[str, list[Grant]] = {}
    for g in trust.grants:
        by_origin.setdefault(g.origin, []).append(g)
    for other, grants in sorted(by_origin.items()):
        role = _role(tier, region, other, grants, trust)
        if other == origin or role is None:
            continue
        valid = [g for g in grants if not g.revoked]
        keys = sorted({g.nats for g in valid if g.nats})
        their_tier = next((g.tier for g in reversed(grants) if g.tier), "?")
        if not valid:
            left.append(LeftOut(other, _("every key of it is revoked")))
            continue
        if not keys:
            left.append(
                LeftOut(
                    other,
                    _(
                        "certified without a NATS key: it cannot connect until its certifier"
                        " certifies its key again with its nats.pub (anjian keys certify ..."
                        " --nats-key nats.pub)"
                    ),
                )
            )
            continue
        if role == CHILD:
            publish, subscribe = child_permissions(other, trust.regions[other])
        else:
            publish, subscribe = archive_permissions(other, follows=tier == "national")
        users += [User(k, other, their_tier, role, publish, subscribe) for k in keys]
    return _once_each(users, left)


def _role(tier: str, region: str, other: str, grants: list[Grant], trust: Trust) -> str | None:
    """What a certified origin is to this tier's server: a child (any node strictly inside
    its area: a county may report straight to a province), the other centre, or nothing."""
    tiers = {g.tier for g in grants}
    if tier == "national" and "backup" in tiers:
        return ARCHIVE_READER
    if tier == "backup":
        return ARCHIVE_READER if "national" in tiers else None
    theirs = trust.regions.get(other)
    if theirs is None or theirs in (region, NATIONAL_REGION):
        return None
    return CHILD if in_subtree(region, theirs) else None


def _once_each(users: list[User], left: list[LeftOut]) -> tuple[list[User], list[LeftOut]]:
    """A NATS key certified for more than one node is no one's (but the tier's own)."""
    owners: dict[str, set[str]] = {}
    for u in users:
        owners.setdefault(u.nkey, set()).add(u.origin)
    kept = []
    for u in users:
        if len(owners[u.nkey]) > 1 and u.role != TIER:
            shared = ", ".join(sorted(owners[u.nkey] - {u.origin}))
            left.append(
                LeftOut(
                    u.origin,
                    _("its NATS key {nkey} is also {others}'s", nkey=u.nkey, others=shared),
                )
            )
        else:
            kept.append(u)
    return kept, left


# -- the files ------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return json.dumps(text)


def _list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_quote(i) for i in items) + "]"


def render_authorisation(users: list[User]) -> str:
    """The authorisation file: one nkey user each, no anonymous access."""
    lines = [
        "# Written by `anjian nats config` (and by the node when its trust changes): the",
        "# certified NATS identities and what each may do. Do not edit: it is rewritten.",
        "authorization {",
        "  users = [",
    ]
    for u in users:
        lines.append(f"    # {u.origin} ({u.tier}): {u.role}")
        if u.publish is None and u.subscribe is None:
            lines.append(f"    {{ nkey: {_quote(u.nkey)} }}")
            continue
        lines.append(f"    {{ nkey: {_quote(u.nkey)}, permissions: {{")
        lines.append(f"        publish: {{ allow: {_list(u.publish or ())} }}")
        lines.append(f"        subscribe: {{ allow: {_list(u.subscribe or ())} }}")
        lines.append("    } }")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def listen_address(config: Config, listen: str | None = None) -> str:
    """Where the server listens: ``listen`` if given, else from ``[federation] nats``: its
    address if it is one (or localhost), every interface on its port if it is a name."""
    if listen:
        return listen
    url = config.federation.nats
    if url is None:
        raise ConfigError(
            _(
                "{directory}: this node runs no NATS server ([federation] nats is not set)",
                directory=config.directory,
            )
        )
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or DEFAULT_PORT
    if host == "localhost":
        return f"127.0.0.1:{port}"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"0.0.0.0:{port}"
    return f"{host}:{port}"


def render_server(
    config: Config, directory: Path, listen: str | None = None, tls: ServerTLS | None = None
) -> str:
    """The server's configuration, its files in ``directory``."""
    node = config.node
    lines = [
        f"# nats-server for {node.tier} {node.origin} ({node.region}), written by",
        "# `anjian nats config`: start it with `nats-server -c <this file>`.",
        f"server_name: {_quote(f'anjian-{node.origin}')}",
        f"listen: {_quote(listen_address(config, listen))}",
        f"max_payload: {MAX_PAYLOAD}",
        f"pid_file: {_quote(str(directory / PID_FILE))}",
        "jetstream {",
        f"  store_dir: {_quote(str(directory / STORE_DIR))}",
        "}",
    ]
    if tls is not None:
        lines += [
            "tls {",
            f"  cert_file: {_quote(str(tls.cert.resolve()))}",
            f"  key_file: {_quote(str(tls.key.resolve()))}",
        ]
        if tls.ca is not None:
            lines.append(f"  ca_file: {_quote(str(tls.ca.resolve()))}")
        if tls.verify:
            lines.append(
                "  verify: true  # mutual TLS: a client without a valid certificate is refused"
            )
        lines += ["  timeout: 2", "}"]
    lines += ["# who may connect, and what each may do", f"include {_quote(AUTH_FILE)}", ""]
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (0600) by renaming a complete file over it; False if it
    already holds exactly that."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


# -- from the node's trust ---------------------------------------------------------------------
def trust_of(config: Config) -> Trust:
    """The node's certified hierarchy: its trust chain, the key documents in its log (its
    own, and those applied from below) and those that came down from above."""
    if not config.root_key_file.exists():
        raise ConfigError(
            _(
                "{file} is missing: install the node's trust chain first (anjian keys install"
                " DIR DOCUMENTS --root-key root.pub)",
                file=config.root_key_file,
            )
        )
    try:
        root = load_public(config.root_key_file)
    except FederationError as e:
        raise ConfigError(str(e)) from None
    docs = key_documents(config)
    if config.store.backend != "sqlite" or config.sqlite_file.exists():
        with read_only(config) as (rows, _db):
            docs += documents_from_above(rows)
    trust, _problems = build_trust(root, docs)
    return trust


def authorisation(config: Config) -> tuple[list[User], list[LeftOut]]:
    node = config.node
    try:
        nkey = nats_public(config)
    except FederationError as e:
        raise ConfigError(str(e)) from None
    return authorised(node.origin, node.tier.value, node.region, nkey, trust_of(config))


def write_authorisation(config: Config, directory: Path) -> dict[str, Any]:
    """Rewrite the authorisation file in ``directory`` from the node's trust; says whether it
    changed, and who is authorised."""
    users, left = authorisation(config)
    changed = write_atomically(directory / AUTH_FILE, render_authorisation(users))
    return {"changed": changed, **summary(users, left)}


def summary(users: list[User], left: list[LeftOut]) -> dict[str, Any]:
    return {
        "users": [
            {"origin": u.origin, "tier": u.tier, "role": u.role, "nkey": u.nkey} for u in users
        ],
        "left_out": [{"origin": x.origin, "reason": str(render(x.reason))} for x in left],
    }


def write_config(
    config: Config,
    directory: Path,
    listen: str | None = None,
    tls: ServerTLS | None = None,
) -> dict[str, Any]:
    """The tier's server configuration and authorisation in ``directory`` (made 0700 if
    missing), both written atomically (0600); the same inputs give the same files. Returns
    what it wrote and whom it authorised."""
    address = listen_address(config, listen)  # first: a node that runs no server is told so
    directory = directory.resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / STORE_DIR).mkdir(mode=0o700, exist_ok=True)
    report = write_authorisation(config, directory)
    text = render_server(config, directory, listen, tls)
    changed = write_atomically(directory / CONFIG_FILE, text) or report["changed"]
    return {
        "config": str(directory / CONFIG_FILE),
        "authorisation": str(directory / AUTH_FILE),
        "listen": address,
        "store": str(directory / STORE_DIR),
        "pid_file": str(directory / PID_FILE),
        "tls": None
        if tls is None
        else {"cert": str(tls.cert), "ca": str(tls.ca) if tls.ca else None, "verify": tls.verify},
        "changed": changed,
        "users": report["users"],
        "left_out": report["left_out"],
    }


def reload_server(directory: Path) -> bool:
    """Have the server whose pid file is in ``directory`` read its configuration again
    (SIGHUP); False if it is not running."""
    try:
        pid = int((directory / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():  # a stale pid file may name another process now
        try:
            if b"nats-server" not in proc.read_bytes():
                return False
        except OSError:
            return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    except PermissionError as e:
        raise ConfigError(_("cannot signal nats-server {pid}: {error}", pid=pid, error=e)) from None
    return True


def trust_mark(node: Node) -> tuple[Any, ...]:
    """What changes when the node's trust may have: key documents recorded in its log (its
    own and applied from below) or come down from above, and its trust directory."""
    recorded = node.log.query(
        "SELECT COUNT(*) AS n FROM stored_events WHERE topic = ?", ("keys.document_recorded/1",)
    )
    above = node.log.query(
        "SELECT COUNT(*) AS n, MAX(verified) AS v FROM downward"
        " WHERE verified > 0 AND type = 'keys.document_recorded/1'"
    )
    trust_dir = node.config.trust_dir
    files = sorted((p.name, p.stat().st_mtime_ns) for p in trust_dir.glob("*"))
    return (int(recorded[0]["n"]), int(above[0]["n"]), above[0]["v"], tuple(files))


class Authoriser(Part):
    """Keeps this tier's server authorisation current while the node serves: when a key
    document is recorded or comes down (a child certified or revoked), the authorisation file
    in ``[federation] server_dir`` is rewritten and the server reloads it."""

    name = "authorisation"

    def __init__(self, node: Node, directory: Path, read: Call, write: Call) -> None:
        super().__init__(node, str(directory), read, write)
        self.directory = directory
        self.seen: tuple[Any, ...] | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.look()
            except (DomainError, FederationError, OSError) as e:
                if str(e) != self.last_error:
                    log.error(_("authorisation: {error}", error=e))
                self.last_error = describe(e)
                self.connected = False
            await asyncio.sleep(WATCH)

    async def look(self) -> None:
        mark = await self.read(trust_mark, self.node)
        if mark == self.seen:
            return
        if not (self.directory / CONFIG_FILE).exists():
            raise ConfigError(
                _(
                    "no {file} in {directory}: write it with `anjian nats config {node} --out"
                    " {directory}`",
                    file=CONFIG_FILE,
                    directory=self.directory,
                    node=self.node.config.directory,
                )
            )
        report = await self.read(write_authorisation, self.node.config, self.directory)
        self.seen = mark
        self.connected, self.last_error = True, None
        if report["changed"]:
            reloaded = await self.read(reload_server, self.directory)
            said = (
                _(
                    "authorisation: {users} NATS users ({left} left out); the server reloaded it",
                    users=len(report["users"]),
                    left=len(report["left_out"]),
                )
                if reloaded
                else _(
                    "authorisation: {users} NATS users ({left} left out); the server is not"
                    " running",
                    users=len(report["users"]),
                    left=len(report["left_out"]),
                )
            )
            log.info(said)
