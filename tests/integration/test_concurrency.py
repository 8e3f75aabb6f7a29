"""Two writers in two processes revising the same record at once: one wins, the other is
told to reload, and the log holds exactly the winner's revision."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from node import config as config_mod
from node.service import Node
from tests.conftest import make_node_dir
from tests.factories import accident, js
from tests.servers import Deadline

pytestmark = pytest.mark.slow


def test_two_cli_processes_revising_one_accident(tmp_path):
    directory = make_node_dir(tmp_path / "county")
    node = Node(config_mod.load(directory, environ={}))
    a = node.execute("accident.report", js(accident()), user="zhang")
    node.close()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node",
                "record",
                str(directory),
                "accident.supplement",
                "--json",
                "-",
                "--actor",
                f"clerk{n}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    # loss figures: a supplement the 30-day casualty window never closes, whatever the date
    bodies = [
        js({"id": a["id"], "direct_loss_yuan": n * 1000, "expected_version": 1}) for n in (1, 2)
    ]
    both = Deadline(60)  # they run at once: the second waits only for what is left
    outcomes = [p.communicate(b, timeout=both.left()) for p, b in zip(procs, bodies, strict=True)]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outcomes
    loser = next(err for p, (_, err) in zip(procs, outcomes, strict=True) if p.returncode)
    assert "reload" in loser  # "changed since you read it" or "written by someone else"
    winner = json.loads(
        next(out for p, (out, _) in zip(procs, outcomes, strict=True) if not p.returncode)
    )
    node = Node(config_mod.load(directory, environ={}))
    shown = node.show(a["id"])
    assert shown["version"] == 2
    assert shown["direct_loss_yuan"] == winner["record"]["direct_loss_yuan"]
    assert node.status()["event_count"] == 2
    node.close()
