"""HTTPS as an operator sets it up: `anjian init`, certificates from `anjian tls`, node.toml's
[http] pointing at them, a real `anjian serve`. A client that trusts the CA gets answers (and a
Secure session cookie); plain HTTP to the same port and a client without the CA get nothing;
plain HTTP on a non-loopback address is refused unless allowed; and afterwards no file in the
node directory is readable by another user."""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from node.tls import client_context
from tests.factories import credit_code, enterprise

pytestmark = pytest.mark.slow
SERVING = re.compile(r"on (https?)://[\d.]+:(\d+)/api/v1")


def anjian(*args: object, input: str | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "node", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


class Serving:
    """`anjian serve DIR` in a process; the scheme and port read off its log line."""

    def __init__(self, directory: Path, log: Path, *args: str, env: dict[str, str] | None = None):
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node", "serve", str(directory), "--port", "0", *args],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if match := SERVING.search(text):
                self.scheme, self.port = match.group(1), int(match.group(2))
                return
            assert self.proc.poll() is None, f"the node did not start: {text[-1500:]}"
            time.sleep(0.05)
        self.proc.kill()
        pytest.fail("the node did not start within 30 s")

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(30)


def request(url: str, context: ssl.SSLContext | None, token: str | None = None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        return resp.status, resp.headers, json.loads(resp.read())


def test_the_api_over_https_with_certificates_made_by_anjian_tls(tmp_path):
    county, ca = tmp_path / "county", tmp_path / "ca"
    assert anjian("init", county, "--tier", "county", "--region", "130102").returncode == 0
    assert anjian("tls", "ca", ca).returncode == 0
    made = anjian("tls", "issue", ca, "county", "--host", "127.0.0.1", "--out", county / "tls")
    assert made.returncode == 0, made.stderr
    config = county / "node.toml"
    config.write_text(
        config.read_text().replace(
            "[http]\n", '[http]\ntls_cert = "tls/county.crt"\ntls_key = "tls/county.key"\n'
        )
    )
    token = anjian("users", "add", county, "clerk", "--role", "writer").stdout.strip()
    assert (
        anjian("users", "password", county, "clerk", input="correct horse battery\n").returncode
        == 0
    )
    source = tmp_path / "enterprise.json"
    source.write_text(json.dumps(enterprise()))
    assert anjian("record", county, "enterprise.register", "--json", source).returncode == 0

    # TLS allows any address: here every address, reached on loopback
    server = Serving(county, tmp_path / "serve.log", "--host", "0.0.0.0")
    try:
        assert server.scheme == "https"
        url = f"https://127.0.0.1:{server.port}/api/v1"
        trusting = client_context(ca / "ca.crt")
        status, headers, body = request(f"{url}/status", trusting, token)
        assert status == 200 and body["event_count"] == 1
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        second = enterprise(credit_code=credit_code(90))
        status, _, created = request(f"{url}/enterprises", trusting, token, second)
        assert status == 201
        login = {"name": "clerk", "password": "correct horse battery"}
        status, headers, body = request(f"{url}/session", trusting, body=login)
        cookie = headers["Set-Cookie"]
        assert status == 200 and "Secure" in cookie and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie and body["csrf_token"]

        with pytest.raises((OSError, http.client.HTTPException)):  # plain HTTP: no answer
            request(f"http://127.0.0.1:{server.port}/api/v1/openapi.json", None)
        with pytest.raises(urllib.error.URLError) as refused:  # a client without the CA
            request(f"{url}/openapi.json", ssl.create_default_context())
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    finally:
        assert server.stop() == 0

    readable = [
        f"{p.relative_to(county)} {stat.S_IMODE(p.stat().st_mode):04o}"
        for p in [county, *county.rglob("*")]
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert readable == []
    names = {p.name for p in county.iterdir()}
    assert {"events.db", "readings.db", "projections.db", "users.toml", "access.log"} <= names
    lines = [json.loads(line) for line in (county / "access.log").read_text().splitlines()]
    assert [(e["action"], e["target"], e["result"]) for e in lines][-2:] == [
        ("record", created["id"], "ok"),
        ("login", "clerk", "ok"),
    ]


def test_plain_http_off_loopback_is_refused_unless_allowed(tmp_path):
    county = tmp_path / "county"
    assert anjian("init", county, "--tier", "county", "--region", "130102").returncode == 0
    refused = anjian("serve", county, "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 1
    assert "refusing to serve plain HTTP on 0.0.0.0" in refused.stderr
    assert "tls_cert" in refused.stderr and "allow_plain = true" in refused.stderr
    allowed = Serving(
        county, tmp_path / "serve.log", "--host", "0.0.0.0", env={"ANJIAN_HTTP_ALLOW_PLAIN": "1"}
    )
    try:
        assert allowed.scheme == "http"
        status, _, _ = request(f"http://127.0.0.1:{allowed.port}/api/v1/openapi.json", None)
        assert status == 200
    finally:
        assert allowed.stop() == 0
