"""The import graph is the architecture: domain is pure, projections read only the domain,
federation and hardware are adapters, node wires them; and every module imports on its own."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
OURS = {"domain", "projections", "federation", "hardware", "node"}
STDLIB = set(sys.stdlib_module_names)
IO_MODULES = {
    "os",
    "io",
    "socket",
    "sqlite3",
    "subprocess",
    "asyncio",
    "pathlib",
    "shutil",
    "tempfile",
    "urllib",
    "http",
    "ssl",
    "select",
    "selectors",
    "threading",
    "multiprocessing",
    "time",
    "random",
}
ALLOWED = {
    "domain": {"ours": set(), "third_party": {"pydantic", "babel"}},  # babel reads catalogues
    "projections": {"ours": {"domain"}, "third_party": None},
    "federation": {"ours": {"domain"}, "third_party": None},
    "hardware": {"ours": {"domain"}, "third_party": None},
    "node": {"ours": OURS, "third_party": None},
}


# node/ in rooms: its root is the core (config, store, signed log, readings, projector, service,
# keys, users, sensor wiring); each subpackage a room, and runtime.py the one core module that
# runs replication. What each may import of node/ is written here; the packages above are
# governed by ALLOWED.
ROOMS = {
    "node": {"node"},  # the core imports no room
    "node.runtime": {"node", "node.replication"},
    "node.replication": {"node", "node.replication"},
    "node.audit": {"node", "node.audit"},  # an auditor's tools never replicate
    "node.api": {"node", "node.runtime", "node.replication", "node.api"},
    "node.cli": {"node", "node.runtime", "node.replication", "node.audit", "node.api", "node.cli"},
    "node.__main__": {"node.cli"},
}
# third-party libraries only one place may import: the NATS driver stays behind the transport,
# and NATS identities (nkeys) are made and checked in federation.nkey
ONLY_IN: dict[str, set[str]] = {"nats": {"federation"}, "nkeys": {"federation"}}


def modules():
    for package in sorted(OURS):  # the same order in every process
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def room_of(name: str) -> str:
    """The room a module of ours lives in: ``node.replication.uplink`` -> ``node.replication``,
    ``node.store`` -> ``node`` (the core), other packages by their top-level name."""
    parts = name.split(".")
    if parts[0] != "node" or len(parts) == 1:
        return parts[0]
    if ".".join(parts[:2]) in ROOMS:
        return ".".join(parts[:2])
    return "node"


def imported_names(path: Path):
    """Full module names imported (``from a.b import c`` gives ``a.b.c`` and ``a.b``: c may
    be a submodule), lazy imports inside functions included."""
    tree = ast.parse(path.read_text(), str(path))
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            yield from (a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            yield n.module
            yield from (f"{n.module}.{a.name}" for a in n.names)


def imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            yield from (a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            yield n.module.split(".")[0]


@pytest.mark.parametrize(("package", "path"), list(modules()), ids=lambda x: str(x)[-40:])
def test_import_rules(package, path):
    rule = ALLOWED[package]
    for name in imports(path):
        if name in OURS:
            assert name == package or name in rule["ours"], (
                f"{path}: {package} may not import {name}"
            )
        elif name in STDLIB:
            if package == "domain":
                assert name not in IO_MODULES, f"{path}: the domain does no I/O, yet imports {name}"
        elif rule["third_party"] is not None:
            assert name in rule["third_party"], f"{path}: {package} may not import {name}"
        if name in ONLY_IN:
            assert package in ONLY_IN[name], f"{path}: only {ONLY_IN[name]} may import {name}"


def node_modules():
    return [p for p in sorted((ROOT / "node").rglob("*.py"))]


@pytest.mark.parametrize("path", node_modules(), ids=lambda p: module_name(p))
def test_room_rules(path):
    room = room_of(module_name(path))
    allowed = ROOMS[room]
    for name in imported_names(path):
        if name.split(".")[0] != "node" or name == "node":
            continue
        target = room_of(name)
        assert target in allowed, f"{module_name(path)} ({room}) may not import {name} ({target})"


def test_every_room_is_named():
    """A new subpackage of node/ gets its rule here before it lands."""
    rooms = {f"node.{p.parent.name}" for p in (ROOT / "node").glob("*/__init__.py")}
    assert rooms <= set(ROOMS), f"rooms without a rule: {sorted(rooms - set(ROOMS))}"
    for room in rooms:
        init = ROOT / room.replace(".", "/") / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{room} says what lives there"


def test_the_room_rule_catches_a_crossing(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from node.replication.importer import Importer\nimport node.api.app\n")
    names = [n for n in imported_names(bad) if room_of(n) != "node"]
    assert {room_of(n) for n in names} == {"node.replication", "node.api"}
    assert "node.replication" not in ROOMS["node.audit"]
    assert "node.cli" not in ROOMS["node.api"]


def test_the_rule_catches_a_forbidden_edge(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("import sqlite3\nfrom node.service import Node\n")
    assert list(imports(bad)) == ["sqlite3", "node"]


IMPORT_EACH_ALONE = """
import importlib, json, sys, traceback
ours, failures = tuple(sys.argv[1].split(",")), {}
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[loaded]  # as in a fresh interpreter, but for third-party libraries
    topics = getattr(sys.modules.get("eventsourcing.utils"), "_topic_cache", {})
    topics.clear()  # eventsourcing keeps our event classes by their wire names
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc()
print(json.dumps(failures))
"""


def test_every_module_imports_alone():
    """Each module imported first, with none of ours loaded before it, catches import cycles.
    One interpreter for all: between two modules every module of ours is forgotten (what
    matters for a cycle), while third-party libraries stay loaded (what makes a fresh
    interpreter per module cost a second each)."""
    names = [module_name(path) for _, path in modules() if path.name != "__main__.py"]
    r = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, ",".join(sorted(OURS)), *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    failures = json.loads(r.stdout.splitlines()[-1])
    assert not failures, "\n".join(f"{n}:\n{tb}" for n, tb in failures.items())


def test_a_cycle_is_caught(tmp_path):
    """The check above fails on a real cycle: a imports b, which needs a name a defines later."""
    (tmp_path / "cyc").mkdir()
    (tmp_path / "cyc" / "__init__.py").write_text("")
    (tmp_path / "cyc" / "a.py").write_text("from cyc.b import B\nA = 1\n")
    (tmp_path / "cyc" / "b.py").write_text("from cyc.a import A\nB = 2\n")
    r = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, "cyc", "cyc.a", "cyc.b"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    failures = json.loads(r.stdout.splitlines()[-1])
    assert set(failures) == {"cyc.a", "cyc.b"}
    assert "partially initialized" in failures["cyc.a"]
