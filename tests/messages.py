"""The message catalogues, kept: every message the product shows a person, and what the zh-CN
catalogue (``domain/locale/zh_CN/*.po``) lacks.

    python -m tests.messages missing [PO]   the PO entries still to translate (all, or one file's)
    python -m tests.messages check          what tests/test_messages.py checks, as a report

Messages come from three places: the source (``_("…")`` and ``N_("…")``, extracted by Babel),
the command line's help (every command's and option's, as click shows it), and click's own
texts (``Usage:``, ``Missing option``…), which the CLI reads through the same catalogue. Each
part of the product keeps its translations in its own PO file (``PARTS``)."""

from __future__ import annotations

import inspect
import sys
from collections import defaultdict
from pathlib import Path

import click
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import write_po

from domain.i18n import ZH, catalogue_files, placeholders

ROOT = Path(__file__).parents[1]
PACKAGES = ("domain", "projections", "federation", "hardware", "node")
# the PO file of each part, the first prefix that matches a source file's path
PARTS = (
    ("node/cli/", "cli.po"),
    ("node/api/", "api.po"),
    ("node/replication/", "replication.po"),
    ("node/audit/", "audit.po"),
    ("node/", "node.po"),
    ("domain/", "domain.po"),
    ("federation/", "federation.po"),
    ("projections/", "projections.po"),
    ("hardware/", "hardware.po"),
)
KEYWORDS = {"_": None, "N_": None}
CLICK_KEYWORDS = {"_": None, "ngettext": (1, 2)}


def part_of(path: str) -> str:
    return next(po for prefix, po in PARTS if path.startswith(prefix))


def source_messages() -> dict[str, set[str]]:
    """Each PO file's messages marked in the source."""
    found: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for _line, msg, _comments, _ctx in extract_from_file(
                "python", str(path), keywords=KEYWORDS
            ):
                if isinstance(msg, str) and msg:
                    found[part_of(rel)].add(msg)
    return found


def help_messages() -> set[str]:
    """Every help text the command line shows (commands, options, arguments), as msgids."""
    from node.cli.main import main

    found: set[str] = set()

    def walk(command: click.Command) -> None:
        for text in help_texts(command):
            found.add(text)
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                walk(sub)

    walk(main)
    return found


def help_texts(command: click.Command) -> list[str]:
    """The help texts of one command (its own, its short help, its parameters')."""
    from node.cli.i18n import original

    texts = [original(command, name) for name in ("help", "short_help", "epilog")]
    texts += [original(p, "help") for p in command.params]
    return [inspect.cleandoc(t).partition("\f")[0].strip() for t in texts if t]


# click's texts it passes to gettext through a variable (``_(extra["required"])``)
CLICK_INDIRECT = {"required"}


def click_messages() -> set[str]:
    """The texts click itself shows (its source, as its gettext calls name them)."""
    found: set[str] = set(CLICK_INDIRECT)
    for path in sorted(Path(click.__file__).parent.glob("*.py")):
        for _line, msg, _comments, _ctx in extract_from_file(
            "python", str(path), keywords=CLICK_KEYWORDS
        ):
            for m in msg if isinstance(msg, tuple) else (msg,):
                if m:
                    found.add(m)
    return found


def expected() -> dict[str, set[str]]:
    """Each PO file's messages, as the product has them now."""
    wanted = source_messages()
    wanted["cli.po"] |= help_messages()
    wanted["click.po"] |= click_messages()
    return wanted


def problems() -> list[str]:
    """What is wrong with the zh-CN catalogue: a message without a translation, a
    translation that drops or adds a placeholder, one message translated two ways, an entry
    the product no longer has."""
    wanted = expected()
    every = set().union(*wanted.values())
    have: dict[str, dict[str, str]] = {name: dict(entries) for name, entries in catalogue_files(ZH)}
    out = []
    translations: dict[str, set[str]] = defaultdict(set)
    for name, entries in have.items():
        for msgid, text in entries.items():
            if text:
                translations[msgid].add(text)
                if placeholders(text) != placeholders(msgid):
                    out.append(f"{name}: placeholders differ: {msgid!r} -> {text!r}")
            if msgid not in every:
                out.append(f"{name}: no longer in the product: {msgid!r}")
    for msgid, texts in translations.items():
        if len(texts) > 1:
            out.append(f"translated {len(texts)} ways: {msgid!r}: {sorted(texts)}")
    for name, msgids in sorted(wanted.items()):
        for msgid in sorted(msgids):
            if not translations.get(msgid):
                out.append(f"{name}: no zh-CN translation: {msgid!r}")
    return out


def missing(po: str | None = None) -> Catalog:
    """The entries still to translate, as a PO catalogue (of one file, or all)."""
    wanted = expected()
    done = {msgid for _name, entries in catalogue_files(ZH) for msgid, text in entries if text}
    catalog = Catalog(locale="zh_CN", project="anjian")
    for name, msgids in sorted(wanted.items()):
        if po is not None and name != po:
            continue
        for msgid in sorted(msgids - done):
            catalog.add(msgid, "", auto_comments=[name])
    return catalog


def main(argv: list[str]) -> int:
    if argv[:1] == ["missing"]:
        write_po(sys.stdout.buffer, missing(argv[1] if len(argv) > 1 else None), omit_header=True)
        return 0
    if argv[:1] == ["check"]:
        found = problems()
        print("\n".join(found) or "the zh-CN catalogue is complete")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
