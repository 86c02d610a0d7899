"""The cluster harness's proxy (tools/cluster.py), checked against three tiny HTTP servers that
say who they are: each request goes to the next server, also on one keep-alive connection; big
bodies stream through; a request to a dead server fails instead of being retried on another.

Runs with either backend (it starts no berth); skipped where haproxy is not installed.
"""

from __future__ import annotations

import http.client
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tools.cluster import HAProxy, _reserve_port

pytestmark = pytest.mark.skipif(not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
                                reason="haproxy is not installed (tests/install-deps.sh)")


def _server(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Node", name)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            size = int(self.path.rsplit("=", 1)[1]) if "size=" in self.path else 0
            if size:  # a big response, streamed
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.send_header("X-Node", name)
                self.end_headers()
                block = b"x" * (1 << 20)
                left = size
                while left:
                    n = min(left, len(block))
                    self.wfile.write(block[:n])
                    left -= n
                return
            self._answer(200, name.encode())

        def do_PUT(self):  # noqa: N802
            got = 0
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    while size:
                        n = len(self.rfile.read(min(size, 1 << 20)))
                        got, size = got + n, size - n
                    self.rfile.readline()
            else:
                left = int(self.headers.get("Content-Length", "0"))
                while left:
                    n = len(self.rfile.read(min(left, 1 << 20)))
                    got, left = got + n, left - n
            self._answer(201, f"{name}:{got}".encode())

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def proxied():
    servers = [_server(f"n{i + 1}") for i in range(3)]
    work = Path(tempfile.mkdtemp(prefix="berth-proxy-test-"))
    reservation = _reserve_port("127.0.0.1")
    port = reservation.getsockname()[1]
    proxy = HAProxy(work, "127.0.0.1", port, [f"127.0.0.1:{s.server_address[1]}" for s in servers], "http",
                    work / "haproxy.log")
    try:
        proxy.start()
        reservation.close()
        yield f"http://127.0.0.1:{port}", servers, proxy
    finally:
        reservation.close()
        proxy.stop()
        for s in servers:
            s.shutdown()
            s.server_close()
        shutil.rmtree(work, ignore_errors=True)


def test_each_request_goes_to_the_next_node_also_on_one_connection(proxied):
    url, _, _ = proxied
    s = requests.Session()
    s.trust_env = False
    seen = [s.get(url + "/", timeout=10).text for _ in range(9)]
    assert sorted(seen) == ["n1"] * 3 + ["n2"] * 3 + ["n3"] * 3, seen
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), seen
    # One raw keep-alive connection: still a different node per request.
    c = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    try:
        names = []
        for _ in range(6):
            c.request("GET", "/")
            r = c.getresponse()
            names.append(r.read().decode())
            assert not r.will_close
        assert len(set(names[:3])) == 3 and names[:3] == names[3:], names
    finally:
        c.close()


def test_big_bodies_stream_both_ways(proxied):
    url, _, _ = proxied
    size = 96 * 1024 * 1024
    r = requests.put(url + "/up", data=b"\0" * size, timeout=120)
    assert r.status_code == 201 and r.text.endswith(f":{size}"), r.text

    def chunks():
        for _ in range(40):
            yield b"y" * (1 << 20)

    r = requests.put(url + "/up", data=chunks(), timeout=120)  # chunked, no length known
    assert r.status_code == 201 and r.text.endswith(f":{40 << 20}"), r.text
    with requests.get(url + f"/down?size={size}", stream=True, timeout=120) as r:
        assert r.status_code == 200
        assert sum(len(b) for b in r.iter_content(1 << 20)) == size


def test_a_dead_node_fails_its_requests_without_a_retry_elsewhere(proxied):
    url, servers, _ = proxied
    servers[1].shutdown()
    servers[1].server_close()
    codes = []
    for _ in range(6):
        r = requests.get(url + "/", timeout=10)
        codes.append((r.status_code, r.text if r.status_code == 200 else ""))
    failed = [c for c, _ in codes if c != 200]
    assert len(failed) == 2 and set(failed) <= {502, 503}, codes
    assert {t for c, t in codes if c == 200} == {"n1", "n3"}, codes
