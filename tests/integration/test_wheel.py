"""A plain (non-editable) install of the wheel works on its own: the wheel built from the
repository holds every module of the source tree, and `anjian` installed from it into a fresh
virtual environment initializes a node, records, exports and verifies, run from a directory
outside the source tree (where neither the checkout nor the dev venv's editable install can
stand in for a module the wheel left out)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.factories import enterprise, js
from tests.servers import Deadline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
STEPS = 540  # the commands below in all (each has a bound of its own as well), within 600 s

ROOT = Path(__file__).parents[2]
PACKAGES = ("node", "domain", "projections", "federation", "hardware")
# not copied: at the top, dot-directories (.git, .venv, caches), virtual environments and build
# output; anywhere, caches and run-time data
TOP = shutil.ignore_patterns(".*", "venv", "build", "dist", "*.egg-info")
ANYWHERE = shutil.ignore_patterns("__pycache__", ".*cache", "*.db", "*.db-*", "*.key")


def ignore(directory: str, names: list[str]) -> set[str]:
    top = TOP(directory, names) if Path(directory) == ROOT else set()
    return top | ANYWHERE(directory, names)


IMPORT_ALL = """\
import importlib, json, sys, traceback
site, names = sys.argv[1], json.loads(sys.stdin.read())
bad = {}
for name in names:
    try:
        module = importlib.import_module(name)
    except BaseException:
        bad[name] = traceback.format_exc(limit=-4)
        continue
    if not str(module.__file__).startswith(site):
        bad[name] = f"imported from {module.__file__}, not from the installed wheel"
print(json.dumps(bad))
"""


# the child processes see neither the checkout nor the dev venv through the environment
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(*args: str | Path, cwd: Path, timeout: float = 300, **kw):
    r = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )
    assert r.returncode == 0, f"{' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}"
    return r


def source_files(src: Path) -> set[str]:
    """The .py files of the five packages, as paths inside the wheel."""
    return {
        p.relative_to(src).as_posix()
        for package in PACKAGES
        for p in (src / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }


def test_a_plain_install_of_the_wheel_runs_a_node(tmp_path):
    # a copy of the checkout: the build's own build/ and *.egg-info stay out of it, and
    # nothing left in build/ by an earlier build can get into this wheel
    steps = Deadline(STEPS)
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=ignore)
    dist = tmp_path / "dist"
    build = ("wheel", "--no-deps", "-q", "-w", dist, src)
    run(sys.executable, "-m", "pip", *build, cwd=tmp_path, timeout=steps.left(300))
    (wheel,) = dist.glob("anjian-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES)  # no tests/ or config/ as packages
    expected = source_files(src)
    missing = expected - {n for n in names if n.endswith(".py")}
    assert not missing, f"the wheel leaves out {sorted(missing)}"

    # a fresh venv, its dependencies installed from the wheel's metadata (pip's cache keeps it
    # fast); not editable; with the postgres extra, so that node.signedlog_pg imports too
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, timeout=steps.left(60))
    py, anjian = venv / "bin" / "python", venv / "bin" / "anjian"
    install = ("install", "-q", "--no-compile", f"{wheel}[postgres]")
    run(
        sys.executable, "-m", "pip", "--python", py, *install, cwd=tmp_path, timeout=steps.left(300)
    )
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = run(py, "-c", purelib, cwd=tmp_path, timeout=steps.left(60)).stdout.strip()

    work = tmp_path / "work"  # outside the source tree and outside the copy
    work.mkdir()
    where = "import node; print(node.__file__)"
    found = run(py, "-c", where, cwd=work, timeout=steps.left(60)).stdout.strip()
    assert found.startswith(site), found

    modules = sorted(
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for n in expected
        if not n.endswith("/__main__.py")  # importing it runs the CLI
    )
    every = json.dumps(modules)
    bad = run(py, "-c", IMPORT_ALL, site, cwd=work, input=every, timeout=steps.left(120)).stdout
    assert json.loads(bad) == {}

    init = ("init", "county", "--tier", "county", "--region", "130102")
    run(anjian, *init, cwd=work, timeout=steps.left(60))
    (work / "e.json").write_text(js(enterprise()), encoding="utf-8")
    record = ("record", "county", "enterprise.register", "--json", "e.json")
    r = run(anjian, *record, cwd=work, timeout=steps.left(60))
    assert json.loads(r.stdout)["position"] == 1
    r = run(py, "-m", "node", "status", "county", cwd=work, timeout=steps.left(60))
    assert json.loads(r.stdout)["event_count"] == 1
    export = ("audit", "export", "county", "--out", "county.anjian")
    run(anjian, *export, cwd=work, timeout=steps.left(60))
    verify = ("audit", "verify", "county.anjian", "--key", "county/node.pub", "--origin", "130102")
    report = json.loads(run(anjian, *verify, "--json", cwd=work, timeout=steps.left(60)).stdout)
    assert report["ok"] and report["events_checked"] == 1 and report["failures"] == []
