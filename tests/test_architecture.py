"""The import graph is the architecture: domain is pure, projections read only the domain,
federation and hardware are adapters, node wires them; and every module imports on its own."""

import ast
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
    "domain": {"ours": set(), "third_party": {"pydantic"}},
    "projections": {"ours": {"domain"}, "third_party": None},
    "federation": {"ours": {"domain"}, "third_party": None},
    "hardware": {"ours": {"domain"}, "third_party": None},
    "node": {"ours": OURS, "third_party": None},
}


def modules():
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


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


def test_the_rule_catches_a_forbidden_edge(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("import sqlite3\nfrom node.service import Node\n")
    assert list(imports(bad)) == ["sqlite3", "node"]


def test_every_module_imports_alone():
    names = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for _, path in modules()
        if path.name != "__main__.py"
    ]
    script = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    for name in names:  # a fresh interpreter per module catches import cycles
        r = subprocess.run(
            [sys.executable, "-c", script, name], cwd=ROOT, capture_output=True, text=True
        )
        assert r.returncode == 0, f"{name}: {r.stderr}"
