"""Exactly once: the projection process is SIGKILLed mid-batch again and again; after every
restart and catch-up its tables equal a rebuild from zero. A serving node's projections
process ends with the node."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from node import config as config_mod
from node.projector import rebuild
from node.service import Node
from projections.store import ProjectionStore
from tests.conftest import make_node_dir
from tests.factories import accident, credit_code, enterprise, inspection
from tests.integration.helpers import Server

pytestmark = pytest.mark.slow


def fill(directory, n: int) -> int:
    node = Node(config_mod.load(directory, environ={}))
    for i in range(0, n, 500):
        commands = []
        for j in range(i, i + 500):
            kind = ("enterprise.register", "accident.report", "case.open-inspection")[j % 3]
            body = (enterprise(credit_code=credit_code(j)), accident(deaths=j % 5), inspection())[
                j % 3
            ]
            commands.append({"kind": kind, "body": body})
        node.execute_batch(json.dumps({"commands": commands}), user="bulk")
    last = node.status()["last_position"]
    node.close()
    return last


def positions(directory) -> int:
    path = directory / "projections.db"
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            rows = db.execute("SELECT MIN(position), COUNT(*) FROM _positions").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(rows[0] or 0) if rows[1] == 5 else 0


def follower(directory) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "node", "projections", "run", str(directory), "--interval", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def digest(path) -> str:
    store = ProjectionStore(path)
    try:
        return store.digest()["all"]
    finally:
        store.close()


def test_sigkill_mid_batch_never_doubles_or_loses_a_row(tmp_path):
    directory = make_node_dir(tmp_path / "county")
    last = fill(directory, 6000)
    reference_dir = tmp_path / "reference"
    shutil.copytree(directory, reference_dir)
    ref_config = config_mod.load(reference_dir, environ={})
    node = Node(ref_config)
    rebuild(ref_config, node.log)
    node.close()
    expected = digest(reference_dir / "projections.db")

    kills = 0
    for _ in range(8):
        proc = follower(directory)
        # kill it as soon as one batch is committed: the next batch is then under way
        deadline = time.monotonic() + 60
        while positions(directory) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 0 < positions(directory) < last
        # after the restart, once caught up, the tables equal the rebuild
        proc = follower(directory)
        deadline = time.monotonic() + 60
        while positions(directory) < last and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) in (0, -signal.SIGTERM)
        assert positions(directory) == last
        assert digest(directory / "projections.db") == expected
        for f in directory.glob("projections.db*"):  # from zero again, for the next kill
            f.unlink()
    assert kills >= 4, "the kills should land between batches' commits"


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_a_serving_node_projects_in_a_process_that_ends_with_it(tmp_path):
    directory = make_node_dir(tmp_path / "county")
    last = fill(directory, 3000)
    server = Server(directory)
    try:
        deadline = time.monotonic() + 60
        while positions(directory) < last and time.monotonic() < deadline:
            time.sleep(0.05)
        assert positions(directory) == last  # the views followed the log, from their process
        process = children(server.proc.pid)
        assert any(
            b"multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes() for p in process
        ), process
    finally:
        server.kill()  # a crash: nothing closes the pool
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in process) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in process if Path(f"/proc/{p}").exists()]


def test_the_projections_process_ends_even_when_its_node_died_before_it_started(tmp_path):
    directory = make_node_dir(tmp_path / "county")
    place = tmp_path / "here"  # the processes' working directory tells them apart
    place.mkdir()
    script = (
        "import os, sys\n"
        "from node import config\n"
        "from node.projector import follow_pass, projections_process\n"
        f"pool = projections_process(config.load({str(directory)!r}, environ={{}}))\n"
        "pool.submit(follow_pass)\n"
        "os._exit(0)  # gone before the process it started is under way\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", script], cwd=place, env=env).returncode == 0

    def here() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if proc.name.isdigit() and (proc / "cwd").resolve() == place:
                    found.append(int(proc.name))
        return found

    deadline = time.monotonic() + 15
    while here() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert here() == []
