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
from contextlib import closing
from pathlib import Path

import pytest

from node import config as config_mod
from node.projector import rebuild
from node.service import Node
from projections.store import ProjectionStore
from tests.conftest import make_node_dir
from tests.factories import accident, credit_code, enterprise, inspection
from tests.integration.federation import wait_for
from tests.integration.helpers import Server
from tests.servers import Deadline, running

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


# a round (three followers started, a catch-up from zero) takes ~3 s on an idle machine and ~12 s
# on a busy 2-core one; the four rounds' waits share ROUNDS seconds, and the filling and the
# reference rebuild before them take well under a minute
ROUNDS = 300


@pytest.mark.timeout(ROUNDS + 120)
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
    budget = Deadline(ROUNDS)
    for _ in range(4):
        # killed twice on the way (each time as soon as one more batch is committed: the next
        # is then under way), then restarted to catch up: the tables equal the rebuild
        for _ in range(2):
            before = positions(directory)
            proc = follower(directory)
            wait_for(
                lambda p=proc, b=before: positions(directory) > b or p.poll() is not None,
                budget.left(),
                "the follower commits one more batch",
                interval=0.005,
            )
            assert proc.poll() is None, f"the follower exited with {proc.returncode}"
            proc.send_signal(signal.SIGKILL)
            proc.wait(budget.left())
            kills += 0 < positions(directory) < last
        proc = follower(directory)
        wait_for(
            lambda p=proc: positions(directory) >= last or p.poll() is not None,
            budget.left(),
            "the restarted follower catches up",
            lambda: f"at {positions(directory)} of {last}",
            interval=0.05,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(budget.left()) in (0, -signal.SIGTERM)
        assert positions(directory) == last
        assert digest(directory / "projections.db") == expected
        for f in directory.glob("projections.db*"):  # from zero again, for the next kills
            f.unlink()
    assert kills >= 6, "the kills should land between batches' commits"


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


@pytest.mark.timeout(150)  # the node's start 30 s, the views 60 s, the kill 5 s, its child 10 s
def test_a_serving_node_projects_in_a_process_that_ends_with_it(tmp_path):
    directory = make_node_dir(tmp_path / "county")
    last = fill(directory, 3000)
    server = Server(directory)
    try:
        # the views follow the log, from their process
        wait_for(lambda: positions(directory) >= last, 60, "the views catch up", interval=0.05)
        assert positions(directory) == last
        process = children(server.proc.pid)
        assert any(
            b"multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes() for p in process
        ), process
    finally:
        server.kill()  # a crash: nothing closes the pool
    wait_for(lambda: not running(process), 10, "the node's children end with it", interval=0.1)


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
    run = subprocess.run([sys.executable, "-c", script], cwd=place, env=env, timeout=60)
    assert run.returncode == 0

    def here() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if proc.name.isdigit() and (proc / "cwd").resolve() == place:
                    found.append(int(proc.name))
        return found

    wait_for(lambda: here() == [], 15, "the projections process ends", here)
