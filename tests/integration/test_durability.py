"""Nothing acknowledged is lost: SIGKILL the serving node while clients write; after a restart
every write that got a 2xx is there and the log reads back whole."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from node import config as config_mod
from node.service import Node
from node.users import Role, add_user
from tests.factories import accident, credit_code, enterprise, js
from tests.integration.helpers import Server
from tests.servers import Deadline

# the SIGKILL test's waits: the node's start 30 s, the writes 20 s, the kill 10 s, the clients
# 15 s, the restart 30 s and stop 20 s (125 s); the CLI writer's: 30 + 120 + 15 + 10 + 20 s
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def post(url: str, token: str, path: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + "/api/v1" + path,
        data=js(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def writer(url: str, token: str, worker: int, acked: list, stop: threading.Event) -> None:
    serial = 0
    while not stop.is_set():
        serial += 1
        if serial % 2:
            body, path = (
                enterprise(credit_code=credit_code(worker * 100_000 + serial)),
                "/enterprises",
            )
        else:
            body, path = accident(deaths=serial % 4), "/accidents"
        try:
            status, reply = post(url, token, path, body)
        except (OSError, ValueError):
            return  # connection refused or reset: the server is gone
        if 200 <= status < 300:
            acked.append((reply["id"], reply["version"], reply["position"]))


@pytest.mark.parametrize("round_", range(3))
def test_sigkill_while_writing_loses_no_acknowledged_write(tmp_path, round_):
    from tests.conftest import make_node_dir

    directory = make_node_dir(tmp_path / "county")
    token = add_user(config_mod.load(directory, environ={}).users_file, "clerk", Role.WRITER)
    server = Server(directory)
    acked: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=writer, args=(server.url, token, w, acked, stop)) for w in range(4)
    ]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 40 + 20 * round_ and time.monotonic() < deadline:
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGKILL)  # mid-write: clients are still sending
        server.proc.wait(10)
    finally:
        stop.set()
        clients = Deadline(15)
        for t in threads:
            t.join(clients.left())
    assert len(acked) >= 40, "the clients should have written before the kill"

    restarted = Server(directory)  # the node starts again on the same directory
    assert restarted.url
    restarted.stop()
    node = Node(config_mod.load(directory, environ={}))
    try:
        for record_id, version, _ in acked:
            assert node.show(record_id)["version"] >= version
        status = node.status()
        entries = []
        after = 0
        while page := node.log.read(after, 500):
            entries += page
            after = page[-1]["position"]
        assert [e["position"] for e in entries] == list(range(1, status["last_position"] + 1))
        assert len(entries) == status["event_count"] >= len(acked)
        assert {p for _, _, p in acked} <= {e["position"] for e in entries}
    finally:
        node.close()


def test_a_cli_writer_beside_a_running_server(tmp_path):
    """`anjian record` and `anjian serve` on one node directory at once: both succeed."""
    import subprocess
    import sys

    from tests.conftest import make_node_dir

    directory = make_node_dir(tmp_path / "county")
    token = add_user(config_mod.load(directory, environ={}).users_file, "clerk", Role.WRITER)
    server = Server(directory)
    try:
        acked: list = []
        stop = threading.Event()
        t = threading.Thread(target=writer, args=(server.url, token, 1, acked, stop))
        t.start()
        cli = Deadline(120)  # five CLI processes: 1.5 s each idle, 6 s on a busy machine
        for i in range(5):
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "node",
                    "record",
                    str(directory),
                    "enterprise.register",
                    "--json",
                    "-",
                ],
                input=js(enterprise(credit_code=credit_code(900_000 + i))),
                capture_output=True,
                text=True,
                timeout=cli.left(),
            )
            assert r.returncode == 0, r.stderr
        stop.set()
        t.join(15)
        status, body = urllib_get(server.url, token, "/status")
        assert status == 200 and body["event_count"] == len(acked) + 5
    finally:
        assert server.stop() == 0


def urllib_get(url: str, token: str, path: str) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())
