"""`anjian demo --smoke`: a whole federation on this machine converges, and says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.federation import Federation  # noqa: F401 (skips without nats-server)
from tests.servers import descendants, missing, running

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


def test_the_demo_says_which_nats_server_it_could_not_find(tmp_path):
    env = {**os.environ, "ANJIAN_NATS_SERVER": "no-such-nats-server", "ANJIAN_LANG": "en"}
    run = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 1
    assert "ANJIAN_NATS_SERVER=no-such-nats-server: no such nats-server program" in run.stderr


def test_sigterm_stops_the_demo_and_everything_it_started(tmp_path):
    """A service manager's or a timeout's SIGTERM ends the demo as Ctrl-C does: its
    nats-servers and nodes are stopped, not left running without it."""
    from node.replication.natsd import nats_server_binary

    try:
        nats_server_binary()
    except Exception:
        missing("nats-server", "apt-get install -y nats-server")
    demo = subprocess.Popen(
        [sys.executable, "-m", "node", "demo", "--smoke", "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert demo.stdout is not None
    lines = []
    for line in demo.stdout:  # until every node serves
        lines.append(line)
        if line.startswith("county-b (") and "serving on" in line:
            break
    started = descendants(demo.pid)
    assert len(started) >= 8, "".join(lines)  # 3 nats-servers and 5 nodes at least
    demo.send_signal(signal.SIGTERM)
    demo.communicate(timeout=60)
    assert demo.returncode == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30
    while (left := running(started)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running after the demo ended: {sorted(left)}"
