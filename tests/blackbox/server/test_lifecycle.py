"""The berth process itself: secure default, graceful shutdown, restart on the same data.

Berth-only (it starts and signals its own processes); skipped for other targets. With
BERTH_TEST_BACKEND=cluster each process is one node on the cluster's PostgreSQL and S3.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tools.berth import backend_env

HERE = Path(__file__).resolve().parent
BERTH_BIN = Path(os.environ.get("BERTH_BIN") or HERE.parent.parent.parent / "target" / "debug" / "berth")
READY = re.compile(r"^berth: listening on (http://\S+)\s*$")


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("process lifecycle tests start berth themselves")


def start(data: Path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BERTH_BIN), "serve", "--listen", "127.0.0.1:0", "--data", str(data), *extra],
                            stdout=subprocess.PIPE, stderr=open(data.parent / f"{data.name}.log", "ab"),
                            stdin=subprocess.DEVNULL, text=True, env=backend_env(data, env))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = READY.match(line)
        if m:
            return proc, m.group(1), time.monotonic() - t0
    proc.kill()
    raise RuntimeError("berth did not report its address")


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_refuses_everything_without_anonymous(tmp_path):
    proc, url, startup = start(tmp_path / "d")
    try:
        print(f"startup to listening: {startup * 1000:.0f} ms")
        for method, path in [("GET", "/v2/"), ("GET", "/v2/_catalog"), ("POST", "/v2/a/b/blobs/uploads/"),
                             ("GET", "/v2/a/b/manifests/latest")]:
            r = requests.request(method, url + path, timeout=10)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert r.headers["WWW-Authenticate"].startswith("Basic ")
    finally:
        assert stop(proc) == 0


def test_sigterm_finishes_in_flight_upload_then_exits(tmp_path):
    data = tmp_path / "d"
    proc, url, _ = start(data, "--anonymous")
    host, port = url.removeprefix("http://").split(":")
    blob = os.urandom(3 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    s = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST /v2/life/cycle/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(blob)}\r\n\r\n").encode()
    s.sendall(head + blob[: len(blob) // 2])
    time.sleep(0.3)  # the request is being served: half its body is in
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None, "berth exited with a request in flight"
    s.sendall(blob[len(blob) // 2:])
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = s.recv(65536)
        if not chunk:
            break
        response += chunk
    s.close()
    assert response.startswith(b"HTTP/1.1 201"), response[:200]
    assert stop(proc) == 0
    # The acknowledged blob is there after a restart.
    proc, url, _ = start(data, "--anonymous")
    try:
        r = requests.get(f"{url}/v2/life/cycle/blobs/{digest}", timeout=30)
        assert r.status_code == 200 and r.content == blob
    finally:
        stop(proc)


def test_config_file_and_environment(tmp_path):
    data = tmp_path / "d"
    cfg = tmp_path / "berth.toml"
    cfg.write_text('anonymous = true\nmax_manifest_bytes = 64\n')
    env = dict(os.environ, BERTH_CREATE_ON_PUSH="false")
    proc, url, _ = start(data, "--config", str(cfg), env=env)
    try:
        assert requests.get(url + "/v2/", timeout=10).status_code == 200  # anonymous from the file
        r = requests.post(f"{url}/v2/no/such/blobs/uploads/", timeout=10)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"  # from the env
    finally:
        stop(proc)
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_key = 1\n")
    r = subprocess.run([str(BERTH_BIN), "serve", "--data", str(data), "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "no_such_key" in r.stderr
