"""The auditor's commands (`anjian audit ...`): export a node's history, verify an export or a
node directory with nothing but the root key, replay it as it stood at a moment, and prove
single events, append-only growth and raw readings against signed checkpoints."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click

from domain.i18n import N_, _, gettext
from federation.errors import VerificationError
from federation.keys import build_trust
from federation.proof import check_proof
from federation.suite import key_id
from federation.verify import Grant, Trust
from node import access
from node import config as config_mod
from node.audit.export import Source, envelope_count, export, open_source
from node.audit.proofs import prove_consistency, prove_event, prove_readings
from node.audit.replay import replay
from node.audit.verify import anchor, anchor_warnings, verify
from node.cli.base import (
    FORMATS,
    NODE_DIR,
    bar,
    emit,
    format_option,
    public_key,
    user_errors,
    warn,
    when,
)
from node.errors import ConfigError

# the report's words (stable in its JSON), as the text report reads them
WORDS = {
    "every envelope": N_("every envelope"),
    "by checkpoint only": N_("by checkpoint only"),
    "root key": N_("root key"),
    "pinned key": N_("pinned key"),
}


def _word(value: str) -> str:
    return gettext(WORDS[value]) if value in WORDS else value


SOURCE = click.argument("source", type=click.Path(exists=True, path_type=Path))
ROOT_KEY = click.option(
    "--root-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The national root public key (held apart from what is verified): every key must"
    " chain to it through the certifications carried with the history.",
)


@click.group()
def audit() -> None:
    """Export, verify, replay and prove signed history: who recorded what, when, with which
    key, nothing changed."""


@audit.command("export")
@NODE_DIR
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--region", help="Only origins inside this division code's area.")
@click.option("--until", help="As it stood at this time (ISO 8601; a bare date is China time).")
@format_option()
def audit_export(
    directory: Path, out: Path, region: str | None, until: str | None, fmt: str
) -> None:
    """Write a self-contained export (envelopes, checkpoints, key documents) of the whole
    logs this node holds, that verifies with nothing but the national root public key.

    \b
    Example:
      anjian audit export ./national --out hebei.anjian --region 130000 --until 2026-06-30
    """
    moment_ = when(until, "until")
    with user_errors():
        config = config_mod.load(directory)
        with bar(envelope_count(config), _("exporting")) as b:
            summary = export(config, out, region=region, until=moment_, progress=b.update)
        access.record(
            config.directory, getpass.getuser(), "export", str(out), kind="audit", region=region
        )
    emit(summary, fmt)


@audit.command("verify")
@SOURCE
@ROOT_KEY
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Or pin one node's own public key (PEM) instead of the hierarchy: weaker, it shows"
    " only that this key signed the log, not that the key is the node's.",
)
@click.option("--origin", help="With --key: the origin whose key it is (an export's).")
@click.option(
    "--fast", is_flag=True, help="Authenticate runs by checkpoints; skip per-event signatures."
)
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes [all cores].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="The report as text to read, or as JSON (for programs).",
)
@click.option("--json", "as_json", is_flag=True, hidden=True)  # --format json's former name
def audit_verify(
    source: Path,
    root_key: Path | None,
    key_file: Path | None,
    origin: str | None,
    fast: bool,
    jobs: int | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Verify an export file or a node directory: every envelope's signature, the chain, the
    sequence, the checkpoints, each key's validity at its position (and, in a node directory,
    that every stored event matches its envelope). Exit 0 when everything holds; otherwise 1,
    with the first failure per origin.

    The anchor is the national root public key, held apart from what is verified: each key
    must chain to it through the certifications the history carries. A key file that lies
    inside the node directory being audited (or inside the directory of a node whose export
    this is) could have been swapped with the log: that is warned of (stderr, and
    ``warnings`` in the JSON).

    \b
    Example:
      anjian audit verify hebei.anjian --root-key root.pub
    """
    as_json = as_json or fmt == "json"
    if (root_key is None) == (key_file is None):
        raise click.UsageError(
            str(_("give --root-key (the hierarchy) or --key (one pinned node key)"))
        )
    with user_errors(), open_source(source) as src:
        trust, refused = _trust(src, root_key, key_file, origin)
        given = {"--root-key": root_key, "--key": key_file}
        warnings = anchor_warnings(source, src, {o: k for o, k in given.items() if k})
        for warning in warnings:
            warn(warning)
        total = sum(n for _o, n in src.origins())
        with bar(total, _("verifying"), as_json) as b:
            report = verify(src, trust, signatures=not fast, jobs=jobs, progress=b.update)
        report["refused_documents"] = refused
        root = public_key(root_key) if root_key is not None else None
        report["trust"] = anchor(trust, root, origin)
        report["warnings"] = warnings
    if as_json:
        emit(report)
    else:
        for o in report["origins"]:
            click.echo(
                _(
                    "{origin}: {envelopes} envelopes, {checkpoints} checkpoints, root {root}…",
                    origin=o["origin"],
                    envelopes=o["envelopes"],
                    checkpoints=o["checkpoints"],
                    root=o["root"][:16],
                )
            )
        for f in report["failures"]:
            click.echo(
                _(
                    "FAILED {origin} at sequence {seq}: {reason}: {message}",
                    origin=f["origin"],
                    seq=f["seq"],
                    reason=f["reason"],
                    message=f["message"],
                ),
                err=True,
            )
        if report["ok"]:
            t = report["trust"]
            if "origin" in t:
                by = _(
                    "{anchor} {key_id} of {origin}",
                    anchor=_word(t["anchor"]),
                    key_id=t["key_id"],
                    origin=t["origin"],
                )
            else:
                by = _(
                    "{anchor} {key_id}, {count} keys chained",
                    anchor=_word(t["anchor"]),
                    key_id=t["key_id"],
                    count=t["keys_certified"],
                )
            click.echo(
                _(
                    "ok: {events} events of {origins} origins, {checkpoints} checkpoints"
                    " verified ({signatures}; {by})",
                    events=report["events_checked"],
                    origins=report["origins_checked"],
                    checkpoints=report["checkpoints_checked"],
                    signatures=_word(report["signatures"]),
                    by=by,
                )
            )
    sys.exit(0 if report["ok"] else 1)


def _trust(
    source: Source, root_key: Path | None, key_file: Path | None, origin: str | None
) -> tuple[Trust, list[str]]:
    if key_file is not None:
        if origin is None and source.config is None:
            raise click.UsageError(str(_("--key pins one origin's key: name it with --origin")))
        pinned = origin or (source.config.node.origin if source.config else "")
        public = public_key(key_file)
        return Trust([Grant(pinned, public, key_id(public))]), []
    assert root_key is not None
    trust, problems = build_trust(public_key(root_key), source.documents)
    return trust, [str(p) for p in problems]


@audit.command("prove")
@SOURCE
@click.option("--origin", help="The origin of the event, or of the two checkpoints.")
@click.option("--seq", type=click.IntRange(min=1), help="Prove this event is in the log.")
@click.option(
    "--from-size",
    type=click.IntRange(min=1),
    help="With --to-size: prove the log at this checkpoint grew only by appending.",
)
@click.option("--to-size", type=click.IntRange(min=1))
@click.option(
    "--readings",
    "readings_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Prove this raw readings file against the signed summary that covers it.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here.")
def audit_prove(
    source: Path,
    origin: str | None,
    seq: int | None,
    from_size: int | None,
    to_size: int | None,
    readings_file: Path | None,
    out: Path | None,
) -> None:
    """Print a self-contained proof (JSON) that `anjian audit check-proof` verifies with the
    root key alone: one event's inclusion under a signed checkpoint, the consistency of two
    checkpoints of one origin, or a raw readings file against its signed summary.

    \b
    Examples:
      anjian audit prove hebei.anjian --origin 130102 --seq 42 --out event.proof
      anjian audit prove hebei.anjian --origin 130102 --from-size 1000 --to-size 5000
      anjian audit prove ./county --readings 130102B001-0805.tsv
    """
    with user_errors(), open_source(source) as src:
        if readings_file is not None and origin is None and seq is None and from_size is None:
            proof = prove_readings(src, readings_file.read_bytes())
        elif origin is not None and seq is not None and from_size is None and to_size is None:
            proof = prove_event(src, origin, seq)
        elif origin is not None and seq is None and from_size and to_size and not readings_file:
            proof = prove_consistency(src, origin, from_size, to_size)
        else:
            raise click.UsageError(
                str(
                    _(
                        "give --origin with --seq, or --origin with --from-size and"
                        " --to-size, or --readings alone"
                    )
                )
            )
    text = json.dumps(proof, ensure_ascii=False, indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(json.dumps({"proof": proof["proof"], "out": str(out)}))


@audit.command("check-proof")
@click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--root-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--readings",
    "readings_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The raw readings file a readings proof is about.",
)
@format_option()
def audit_check_proof(proof: Path, root_key: Path, readings_file: Path | None, fmt: str) -> None:
    """Verify a proof with nothing but the national root public key: exit 0 and what it proves,
    or exit 1 with the reason.

    \b
    Example:
      anjian audit check-proof event.proof --root-key root.pub
    """
    with user_errors():
        root = public_key(root_key)
        try:
            claim = json.loads(proof.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(
                _("{proof}: not a proof (JSON): {error}", proof=str(proof), error=str(e))
            ) from None
        readings = readings_file.read_bytes() if readings_file is not None else None
        try:
            report = check_proof(claim, root, readings)
        except VerificationError as e:
            click.echo(_("FAILED: {reason}: {message}", reason=e.reason, message=e), err=True)
            sys.exit(1)
    emit(report, fmt)


@audit.command("replay")
@SOURCE
@click.option("--until", required=True, help="The moment (ISO 8601; a bare date is China time).")
@click.option("--region", help="Only origins inside this division code's area.")
@ROOT_KEY
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@format_option()
def audit_replay(
    source: Path, until: str, region: str | None, root_key: Path | None, out: Path, fmt: str
) -> None:
    """Rebuild the projections as they stood at a moment (per origin, the longest prefix
    recorded by then) into a new node directory that `anjian query` reads.

    \b
    Example: the accident register of province 13 on 2026-06-30
      anjian audit replay national.anjian --until 2026-07-01 --region 130000 \\
        --root-key root.pub --out ./hebei-0630
      anjian query ./hebei-0630 accidents
    """
    moment_ = when(until, "until")
    with (
        user_errors(),
        open_source(source) as src,
        bar(sum(n for _o, n in src.origins()), _("replaying")) as b,
    ):
        root = public_key(root_key) if root_key is not None else None
        summary = replay(src, out, until=moment_, region=region, root=root, progress=b.update)
    emit(summary, fmt)
