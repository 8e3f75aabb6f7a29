"""The README tried as a new user would: in a fresh copy of the repository and a fresh
virtualenv, its two commands work exactly as written, and so does the tour."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from node.replication.natsd import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(marker: str, lang: str = "bash") -> str:
    match = re.search(rf"<!-- readme:{marker} -->\n```{lang}\n(.*?)```", README, re.S)
    assert match, f"README has no '{marker}' command block"
    return match.group(1).strip()


def fresh_copy(target: Path) -> Path:
    """The tracked files of the working tree, as a fresh clone would have them."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)
    return target


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTEST", "ANJIAN_"))
    }
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def test_ci_runs_the_readme_test_command():
    assert block("test") in (ROOT / ".ci" / "run").read_text()


# two package installs into fresh virtualenvs: the waits below add up to 540 + 60 + 60 + 30 + 120
# + 540 = 1350 s, and the copy of the repository comes before them
@pytest.mark.timeout(1440)
def test_the_readme_commands_work_as_written(tmp_path):
    repo = fresh_copy(tmp_path / "anjian")
    port = free_port()
    run = subprocess.Popen(
        ["bash", "-c", block("run")],
        cwd=repo,
        env=clean_env(ANJIAN_HTTP_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = b""
    try:
        deadline = time.monotonic() + 540  # a fresh virtualenv installs from the package index
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2
                ) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
                time.sleep(0.5)
        else:
            pytest.fail("the README's run command did not start a node in time")
        tour = (
            block("tour").replace("127.0.0.1:8640", f"127.0.0.1:{port}") + "\necho $TOKEN > token"
        )
        result = subprocess.run(
            ["bash", "-c", tour],
            cwd=repo,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        printed = result.stdout.strip().splitlines()[-2:]
        assert printed == block("output", "").splitlines()  # what the README says it prints
        sensors = subprocess.run(
            [
                "bash",
                "-c",
                "TOKEN=$(cat token)\n"
                + block("sensors").replace("127.0.0.1:8640", f"127.0.0.1:{port}"),
            ],
            cwd=repo,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sensors.returncode == 0, sensors.stderr
        assert sensors.stdout.strip().splitlines() == block("sensors-output", "").splitlines()
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        output = run.communicate(timeout=30)[0]
    assert run.returncode == 0, output.decode()[-3000:]  # SIGTERM is a clean stop
    audit = subprocess.run(
        ["bash", "-c", block("audit")],
        cwd=repo,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert audit.returncode == 0, audit.stderr
    lines = audit.stdout.strip().splitlines()
    assert lines[0].startswith("130102: ") and lines[1].startswith("ok: ")
    assert lines[-1] == lines[-2] and len(lines[-1]) == 64  # the replay's view is the node's

    tests = subprocess.run(
        ["bash", "-c", block("test")],
        cwd=repo,
        env=clean_env(ANJIAN_README_INNER_RUN="1"),
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\d+ passed", tests.stdout)
