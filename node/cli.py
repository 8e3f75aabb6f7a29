"""The ``anjian`` command line: one click group, JSON on stdout, errors on stderr with a
non-zero exit."""

from __future__ import annotations

import asyncio
import csv
import getpass
import hashlib
import io
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from domain.codes import NATIONAL_REGION, Tier, in_subtree
from domain.commands import BY_KIND, SPECS
from domain.errors import Invalid
from domain.sensors.readings import window_of
from domain.sensors.site import site_id
from federation.bundle import pack, unpack
from federation.errors import FederationError
from federation.keys import ROOT, ROOT_TIERS, build_trust, certify, revoke
from federation.proof import SUMMARY
from federation.suite import SigningKey, key_id, load_key, public_pem, save_key
from federation.verify import Trust
from node import config as config_mod
from node.cli_audit import audit
from node.cli_backup import backup, recover_command
from node.cli_hardware import simulate_site
from node.clitools import NODE_DIR, emit, open_node, public_key, user_errors, when
from node.errors import ConfigError
from node.export import key_documents
from node.federation import federation_view
from node.importer import Importer
from node.keys import generate_node_key
from node.projector import rebuild
from node.proofs import readings_file
from node.tuning import collect_less
from node.users import Role, add_user, list_users, remove_user
from projections.queries import QUERIES, Filters
from projections.store import BY_NAME


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """anjian: the node software of work-safety supervision bureaus.

    \b
    Example, a county node on the embedded SQLite store:
      anjian init ./county --tier county --region 130102
      anjian users add ./county clerk --role writer
      anjian serve ./county
    """
    collect_less()


main.add_command(audit)
main.add_command(backup)
main.add_command(recover_command)
main.add_command(simulate_site)


@main.command()
@NODE_DIR
@click.option("--tier", type=click.Choice([t.value for t in Tier]), required=True)
@click.option(
    "--region",
    required=True,
    help="GB/T 2260 code of the bureau's area (000000: national, backup).",
)
@click.option("--parent", help="NATS URL of the parent tier, e.g. nats://city-host:4222.")
@click.option(
    "--nats",
    "nats_url",
    help="This tier's own NATS server (city and above), e.g. nats://127.0.0.1:4222.",
)
@click.option("--origin", help="Origin id for the node's whole life (default: the region code).")
def init(
    directory: Path,
    tier: str,
    region: str,
    parent: str | None,
    nats_url: str | None,
    origin: str | None,
) -> None:
    """Create a node directory: configuration and an empty log.

    \b
    Example:
      anjian init ./county --tier county --region 130102 --parent nats://city:4222
    """
    with user_errors():
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(f"{directory} exists and is not empty; choose a new directory")
        if origin is None:
            origin = "backup" if tier == Tier.BACKUP else region
        try:
            section = config_mod.NodeSection(
                origin=origin, tier=Tier(tier), region=region, parent=parent
            )
        except ValidationError as e:
            msgs = [
                f"{'.'.join(map(str, err['loc'])) or 'region'}: "
                + str(err["msg"]).removeprefix("Value error, ")
                for err in e.errors()
            ]
            raise ConfigError("; ".join(msgs)) from None
        if nats_url is not None:
            try:
                config_mod.FederationSection(nats=nats_url)
            except ValidationError as e:
                raise ConfigError(
                    "--nats: " + str(e.errors()[0]["msg"]).removeprefix("Value error, ")
                ) from None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / config_mod.CONFIG_FILE).write_text(
            config_mod.render(section, nats_url), encoding="utf-8"
        )
        generate_node_key(directory)
    with open_node(directory) as node:
        emit({"directory": str(directory.resolve()), **node.status()})
    click.echo(
        f"next: anjian users add {directory} NAME --role writer   (then: anjian serve {directory})",
        err=True,
    )


@main.command()
@NODE_DIR
@click.option("--host", help="Override [http] host.")
@click.option("--port", type=int, help="Override [http] port (0: any free port).")
def serve(directory: Path, host: str | None, port: int | None) -> None:
    """Serve the HTTP API until SIGINT or SIGTERM."""
    import uvloop

    from node.http import serve as serve_http

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with open_node(directory) as node:
        http = node.config.http

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await serve_http(node, host or http.host, http.port if port is None else port, stop)

        try:
            uvloop.run(run())
        except OSError as e:
            raise ConfigError(f"cannot listen: {e}") from None


@main.command()
@NODE_DIR
@click.argument("kind", type=click.Choice(list(BY_KIND)), metavar="KIND")
@click.option(
    "--json",
    "source",
    type=click.File("rb"),
    required=True,
    help="Command as JSON: a file, or - for stdin.",
)
@click.option("--actor", default=None, help="Who records it (default: your login name).")
@click.option(
    "--id", "target", help='Id of the record the command acts on (or give "id" in the JSON).'
)
def record(directory: Path, kind: str, source: Any, actor: str | None, target: str | None) -> None:
    """Record one command without a server. KIND is one of the command kinds (`anjian kinds`).

    \b
    Example:
      echo '{"name": "某煤矿", "credit_code": "91350100M000100Y43",
             "industry": "coal_mine", "division": "130102"}' |
        anjian record ./county enterprise.register --json - --actor zhang
    """
    raw = source.read()
    with user_errors():
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise Invalid.field("*", f"the input is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise Invalid.field("*", "the input must be a JSON object")
        if "id" in data and not BY_KIND[kind].creates:
            embedded = str(data.pop("id"))
            if target is not None and target != embedded:
                raise Invalid.field("id", f"--id {target} and the JSON's id {embedded} differ")
            target = embedded
    with open_node(directory) as node:
        emit(node.execute(kind, json.dumps(data), user=actor or getpass.getuser(), target=target))


@main.command()
@NODE_DIR
@click.argument("record_id", metavar="ID")
def show(directory: Path, record_id: str) -> None:
    """Print a record (enterprise, accident ...) as it stands, with its history."""
    with open_node(directory) as node:
        emit(node.show(record_id))


@main.command()
@click.option(
    "--smoke", is_flag=True, help="A short run: exit 0 only if it converges in 3 minutes."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the federation in this (new) directory instead of a temporary one.",
)
def demo(smoke: bool, directory: Path | None) -> None:
    """Run a small federation here: national, one province, one city, two counties, each with
    its own nats-server or none, as bureaus would. Records a day at the counties, cuts one
    county's line for a while, and prints per-tier counts and digests until they converge.

    Needs nats-server on PATH (apt-get install -y nats-server)."""
    import tempfile

    from node.demo import run as run_demo
    from node.natsd import nats_server_binary

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with user_errors():
        nats_server_binary()
        if directory is not None:
            if directory.exists() and any(directory.iterdir()):
                raise ConfigError(f"{directory} exists and is not empty; choose a new directory")
            ok_ = run_demo(directory, smoke)
        else:
            with tempfile.TemporaryDirectory(prefix="anjian-demo-") as tmp:
                ok_ = run_demo(Path(tmp), smoke)
    if not ok_:
        sys.exit(1)


@main.command()
@NODE_DIR
def status(directory: Path) -> None:
    """Print the node's origin, tier, region, event count and last log position, and per
    origin held from others: applied, pending, lag, quarantined, unknown types."""
    with open_node(directory) as node:
        emit({**node.status(), "federation": federation_view(node, node.clock())})


@main.command()
@click.argument("kind", required=False, type=click.Choice(list(BY_KIND)), metavar="[KIND]")
def kinds(kind: str | None) -> None:
    """List the command kinds, or print one kind's JSON schema."""
    if kind:
        emit(BY_KIND[kind].model.model_json_schema())
    else:
        emit(
            [{"kind": s.kind, "summary": s.summary, "http": f"POST /api/v1{s.path}"} for s in SPECS]
        )


@main.group()
def keys() -> None:
    """The node's signing key."""


@keys.command("generate")
@NODE_DIR
def keys_generate(directory: Path) -> None:
    """Create the node's Ed25519 key (node.key, 0600) and node.pub, if it has none."""
    with user_errors():
        config_mod.load(directory)
        key = generate_node_key(directory)
        emit({"key_id": key.key_id, "public_key_file": str(directory / config_mod.PUBLIC_KEY_FILE)})


def _signer(directory: Path | None, root_key: Path | None) -> tuple[Any, str, str]:
    """(key, origin, region) of who signs: a node directory's key, or the offline root key."""
    if (directory is None) == (root_key is None):
        raise ConfigError("give the certifier: a node directory, or --root-key for the root")
    try:
        if root_key is not None:
            return load_key(root_key), ROOT, NATIONAL_REGION
        assert directory is not None
        config = config_mod.load(directory)
        return load_key(config.key_file), config.node.origin, config.node.region
    except FederationError as e:
        raise ConfigError(str(e)) from None


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
def keys_root_init(out: Path) -> None:
    """Create the national root key pair, offline: OUT/root.key (0600) and OUT/root.pub."""
    with user_errors():
        out.mkdir(parents=True, exist_ok=True)
        if (out / "root.key").exists():
            raise ConfigError(f"{out / 'root.key'} exists")
        key = SigningKey.generate()
        save_key(key, out / "root.key")
        (out / "root.pub").write_bytes(public_pem(key.public))
        emit({"key_id": key.key_id, "public_key_file": str(out / "root.pub")})


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
    "public_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--from-seq", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def keys_certify(
    directory: Path | None,
    root_key: Path | None,
    origin: str,
    region: str,
    tier: str,
    public_file: Path,
    from_seq: int,
    out: Path,
) -> None:
    """Certify a key of the tier below, inside the certifier's own area. From a node
    directory the certification is also recorded in that node's log.

    \b
    Example (a province certifies one of its counties):
      anjian keys certify ./province --origin 130102 --region 130102 --tier county \\
        --public county.pub --out 130102.cert
    """
    with user_errors():
        key, signer, signer_region = _signer(directory, root_key)
        public = public_key(public_file)
        if signer == ROOT and tier not in ROOT_TIERS:
            raise ConfigError(
                f"the root certifies national, backup and provincial keys, not a {tier}"
            )
        if signer != ROOT and (region == signer_region or not in_subtree(signer_region, region)):
            raise ConfigError(f"{region} is outside the certifier's area {signer_region}")
        if tier != Tier.BACKUP and origin != region:
            raise ConfigError(f"origin {origin} must be the division code of its area {region}")
        doc = certify(
            key,
            signer,
            origin=origin,
            region=region,
            tier=tier,
            public=public,
            from_seq=from_seq,
            at_seq=_next_position(directory),
        )
        _record_if_node(directory, doc)
        out.write_bytes(doc)
        emit(
            {
                "certification": str(out),
                "origin": origin,
                "key_id": key_id(public),
                "from_seq": from_seq,
            }
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
def keys_revoke(
    directory: Path | None,
    root_key: Path | None,
    origin: str,
    revoked: str,
    last_seq: int,
    out: Path,
) -> None:
    """Revoke a key from a log position on (by its certifier, or the root)."""
    with user_errors():
        key, signer, _ = _signer(directory, root_key)
        doc = revoke(
            key,
            signer,
            origin=origin,
            key=revoked,
            last_seq=last_seq,
            at_seq=_next_position(directory),
        )
        _record_if_node(directory, doc)
        out.write_bytes(doc)
        emit({"revocation": str(out), "origin": origin, "key_id": revoked, "last_seq": last_seq})


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
def keys_install(directory: Path, documents: tuple[Path, ...], root_key: Path) -> None:
    """Install the node's trust chain (its certification and its certifiers' up to the root).
    Installing a certification of a key prepared by `anjian keys rotate` switches the node to
    it (restart a running node)."""
    with user_errors():
        config = config_mod.load(directory)
        root = public_key(root_key)
        trust_dir = config.trust_dir
        present = sorted(trust_dir.glob("*.doc")) if trust_dir.exists() else []
        raws = [p.read_bytes() for p in present] + [p.read_bytes() for p in documents]
        trust, problems = build_trust(root, raws)
        if problems:
            raise ConfigError("; ".join(str(p) for p in problems))
        trust_dir.mkdir(exist_ok=True)
        (trust_dir / "root.pub").write_bytes(public_pem(root))
        for p in documents:
            raw = p.read_bytes()
            (trust_dir / f"{hashlib.sha256(raw).hexdigest()[:16]}.doc").write_bytes(raw)
        switched = _switch_to_next_key(config, trust)
        mine = [g for g in trust.keys_of(config.node.origin)]
        emit(
            {
                "installed": len(documents),
                "own_keys": [
                    {"key_id": g.key_id, "from_seq": g.from_seq, "until_seq": g.until_seq}
                    for g in mine
                ],
                "switched_to": switched,
            }
        )


def _switch_to_next_key(config: config_mod.Config, trust: Trust) -> str | None:
    nxt = config.directory / "node.key.next"
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


@keys.command("rotate")
@NODE_DIR
def keys_rotate(directory: Path) -> None:
    """Prepare a new node key (node.key.next): give node.pub.next and the printed from_seq
    to the certifier, then install its certification (and the old key's revocation)."""
    with open_node(directory) as node:
        nxt = directory / "node.key.next"
        if nxt.exists():
            raise ConfigError(f"{nxt} already exists: install its certification first")
        key = SigningKey.generate()
        save_key(key, nxt)
        (directory / "node.pub.next").write_bytes(public_pem(key.public))
        size = node.status()["signed_log"]["envelopes"]
        emit(
            {
                "public_key_file": str(directory / "node.pub.next"),
                "key_id": key.key_id,
                "from_seq": size + 1,
                "old_key_id": node.key.key_id,
                "old_last_seq": size,
            }
        )


@keys.command("record")
@NODE_DIR
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def keys_record(directory: Path, document: Path) -> None:
    """Record a key document this node signed, or (at the national centre, with
    trust/root.pub installed) one the root signed, in this node's log."""
    with open_node(directory) as node:
        emit(node.record_key_document(document.read_bytes(), getpass.getuser()))


@main.group()
def log() -> None:
    """The node's signed log as a bundle file, and taking bundles of other origins."""


@log.command("bundle")
@NODE_DIR
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--after",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only envelopes after this sequence.",
)
def log_bundle(directory: Path, out: Path, after: int) -> None:
    """Write this node's envelopes, checkpoints and trust documents to a bundle file, for a
    parent to import (`anjian log import`) when there is no NATS link."""
    with open_node(directory) as node:
        items: list[tuple[Any, bytes]] = []
        seq = after
        while page := node.log.envelopes(seq, 1000):
            items += [("envelope", raw) for raw in page]
            seq += len(page)
        items += [("checkpoint", note.encode()) for note in node.log.checkpoints()]
        items += [("document", raw) for raw in key_documents(node.config)]
        out.write_bytes(pack(items))
        emit({"bundle": str(out), "envelopes": seq - after, "items": len(items)})


@log.command("import")
@NODE_DIR
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def log_import(directory: Path, bundle: Path) -> None:
    """Verify and apply a bundle of other origins' envelopes: each origin in sequence, once;
    gaps held; forgeries quarantined with their reason (printed)."""
    with open_node(directory) as node:
        try:
            summary = Importer(node).take(unpack(bundle.read_bytes()))
        except FederationError as e:
            raise ConfigError(str(e)) from None
        emit(summary)


@main.command()
@NODE_DIR
@click.argument("name", type=click.Choice(list(QUERIES)), metavar="NAME")
@click.option("--region", help="Division code of an area: a county, city or province.")
@click.option("--since", help="From this time (ISO 8601; a bare date is China time).")
@click.option("--until", help="Up to (not including) this time.")
@click.option("--grade")
@click.option("--industry")
@click.option("--status")
@click.option(
    "--level",
    type=click.Choice(["county", "city", "province"]),
    default="county",
    show_default=True,
    help="Statistics: the region level to group by.",
)
@click.option("--as-of", "as_of", help="For clock-relative lists (default: now).")
@click.option("--accident", help="accident-receipts: one accident's id.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(min=0))
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON.")
def query(
    directory: Path,
    name: str,
    region: str | None,
    since: str | None,
    until: str | None,
    grade: str | None,
    industry: str | None,
    status: str | None,
    level: str,
    as_of: str | None,
    accident: str | None,
    limit: int,
    offset: int,
    as_csv: bool,
) -> None:
    """Query the projections. NAME is one of the queries (accidents, accident-stats,
    enforcement-stats, open-cases, licences, unlicensed, points, alarms, excursions,
    summaries, origins, accident-receipts).

    \b
    Example: accidents of Shijiazhuang (130100) in June 2026, by month and grade:
      anjian query ./city accident-stats --region 130100 --since 2026-06-01 --until 2026-07-01
    """
    with open_node(directory) as node:
        node.project()
        try:
            filters = Filters(
                region=region,
                since=when(since, "since"),
                until=when(until, "until"),
                grade=grade,
                industry=industry,
                status=status,
                level=level,
                as_of=when(as_of, "as-of") or node.clock(),
                accident=accident,
                limit=limit,
                offset=offset,
            )
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        rows = node.query(name, filters)
    if as_csv:
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        emit(rows)


@main.group()
def projections() -> None:
    """The read projections: rebuild them from the log, or print their digest."""


@projections.command("rebuild")
@NODE_DIR
@click.argument("name", required=False, type=click.Choice(list(BY_NAME)))
def projections_rebuild(directory: Path, name: str | None) -> None:
    """Rebuild from zero (one projection, or all) into a new file; a running node keeps
    serving the old tables until the new ones are complete."""
    with open_node(directory) as node:
        total = node.status()["event_count"]
        with click.progressbar(
            length=total, label="rebuilding", file=sys.stderr, hidden=not sys.stderr.isatty()
        ) as bar:
            emit(rebuild(node.config, node.log, name, progress=bar.update))


@projections.command("digest")
@NODE_DIR
@click.option("--region", help="Only rows of this area (division code).")
@click.option("--each", is_flag=True, help="One digest per table as well.")
def projections_digest(directory: Path, region: str | None, each: bool) -> None:
    """The digest over the canonical content of the event-derived tables: equal digests,
    equal views (national centre, backup centre, an auditor's replay)."""
    with open_node(directory) as node:
        node.project()
        assert node._projector is not None
        digest = node._projector.store.digest(region)
        emit(digest if each else {"digest": digest["all"], "region": region})


@projections.command("run")
@NODE_DIR
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
def projections_run(directory: Path, interval: float) -> None:
    """Follow the log and keep the projections up to date until stopped (SIGINT/SIGTERM)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_node(directory) as node:
        while not stop.is_set():
            if node.project() == 0:
                stop.wait(interval)


@main.group()
def readings() -> None:
    """Raw sensor readings: the local store (not the log) and what is derived from it."""


@readings.command("ingest")
@NODE_DIR
@click.argument("site")
@click.option(
    "--json", "source", type=click.File("rb"), required=True, help="Batch as JSON: a file, or -."
)
@click.option("--actor", default=None, help="Who records the derived events (default: your login).")
def readings_ingest(directory: Path, site: str, source: Any, actor: str | None) -> None:
    """Take a batch {"readings": [{"point", "t", "value", "status"}]} for SITE (its code).

    \b
    Example:
      echo '{"readings": [{"point": "CH4-01", "t": "2026-11-29T08:00:00+08:00", "value": 0.42}]}' |
        anjian readings ingest ./county 130102B001 --json -
    """
    raw = source.read()
    with open_node(directory) as node:
        emit(node.ingest(site, raw, user=actor or getpass.getuser()))


@readings.command("export")
@NODE_DIR
@click.argument("site")
@click.option("--window", required=True, help="A time in the 5-minute window (ISO 8601).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def readings_export(directory: Path, site: str, window: str, out: Path) -> None:
    """Write the raw readings a signed summary covers (its site and window), as the canonical
    lines the summary's hash is over: the file `anjian audit prove --readings` proves.

    \b
    Example:
      anjian readings export ./county 130102B001 --window 2026-11-29T08:05 --out w.tsv
    """
    with open_node(directory) as node:
        start = window_of(when(window, "window") or 0)
        for row in node.log.site_events(site_id(site), SUMMARY):
            state = json.loads(bytes(row["state"]))
            if state["window_start"] == start:
                data = readings_file(node.readings, site, start, state["last_reading_id"])
                out.write_bytes(data)
                emit({"readings": str(out), "lines": data.count(b"\n"), "summary": state})
                return
        raise ConfigError(f"no signed summary of site {site} for the window at {window}")


@readings.command("prune")
@NODE_DIR
def readings_prune(directory: Path) -> None:
    """Drop raw readings older than [readings] retention_days, and dropped monitoring files
    kept in the file-drop folders that long (the log is never touched)."""
    with open_node(directory) as node:
        emit(node.prune_readings())


@main.group()
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
