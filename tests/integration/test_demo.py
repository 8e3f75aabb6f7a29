"""`anjian demo --smoke`: a whole federation on this machine converges, and says so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.federation import Federation  # noqa: F401 (skips without nats-server)
from tests.servers import missing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_smoke_demo_converges(tmp_path):
    from node.replication.natsd import nats_server_binary

    try:
        nats_server_binary()
    except Exception:
        missing("nats-server", "apt-get install -y nats-server")
    run = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--smoke", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=220,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "county-b's line to its city is cut" in out
    assert "county-b's line is back" in out
    assert "converged in" in out
    last = out[out.rindex("-- ") :]
    for name in ("province", "city", "county-a", "county-b"):
        line = next(x for x in last.splitlines() if x.startswith(name))
        assert "view at national: same" in line


def test_the_demo_says_how_to_install_nats_server_when_it_is_missing(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no nats-server on PATH
    run = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 1
    assert "apt-get install -y nats-server" in run.stderr
