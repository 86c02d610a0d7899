"""Hostile clients at the transport (issue 9): sockets that say nothing, heads dribbled a byte at
a time, huge heads, too many connections from one address, and ECR bodies that are too big,
too many, or too slow. Each test starts its own berth with short limits, talks raw sockets on
loopback, and bounds every wait. With BERTH_TEST_BACKEND=cluster they talk to one node of the
cluster directly."""

from __future__ import annotations

import datetime
import json
import os
import re
import resource
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import direct_node, spawn_berth

KEY, SECRET = "AKIATRANSPORTTEST001", "transport-test-secret-key-0000000000000"

# Short limits so the tests run in seconds. The defaults are 20 / 90 / 60 s.
LIMITS = {"BERTH_HEADER_TIMEOUT_SECS": "2", "BERTH_IDLE_TIMEOUT_SECS": "3", "BERTH_BODY_TIMEOUT_SECS": "2"}


def _env(**extra) -> dict:
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET)
    env.update(LIMITS)
    env.update(extra)
    return env


def _start(tmp_path: Path, name: str = "data", bin_path=None, **extra):
    # On a cluster: node 1's own socket. These are tests of one server's transport, which a
    # proxy in front would handle in its place.
    return direct_node(spawn_berth(tmp_path / name, env=_env(**extra), bin_path=bin_path, anonymous=False))


def _hostport(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    assert host.startswith("127."), url
    return host, int(port)


def _connect(url: str, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(_hostport(url))
    return s


def _closed_within(s: socket.socket, seconds: float) -> bool:
    """True when the peer closes (EOF or reset) within ``seconds``; any bytes it sends first
    (an error response) are read and ignored."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        poller = select.poll()  # not select(): descriptors here go past 1,024
        poller.register(s, select.POLLIN)
        if not poller.poll(left * 1000):
            return False
        try:
            if s.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    return False


def _ping(url: str, source: str = "127.0.0.1", timeout: float = 5.0) -> int:
    """Status of GET /v2/ on a fresh connection from ``source``."""
    s = _connect(url, source, timeout)
    try:
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = b""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in head and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        m = re.match(rb"HTTP/1\.1 (\d{3})", head)
        assert m, f"no status line from {source}: {head[:200]!r}"
        return int(m.group(1))
    finally:
        s.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _raise_own_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"this test needs {want} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _forged_ecr_head(url: str, length: int, key: str = KEY) -> bytes:
    """An ECR request head whose signature is well formed, in scope and in time, by an access
    key that exists, but wrong: only the body's hash could show it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    auth = (f"AWS4-HMAC-SHA256 Credential={key}/{day}/us-east-1/ecr/aws4_request, "
            f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={'0' * 64}")
    host = "%s:%d" % _hostport(url)
    return (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.1\r\n"
            f"X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories\r\n"
            f"X-Amz-Date: {amz_date}\r\nAuthorization: {auth}\r\nContent-Length: {length}\r\n\r\n").encode()


def _read_response(s: socket.socket, timeout: float) -> tuple[int, bytes]:
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length: *(\d+)", head)
        if sep and m and len(body) >= int(m.group(1)):
            break
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    assert m, f"no response: {data[:300]!r}"
    return int(m.group(1)), data.partition(b"\r\n\r\n")[2]


# ----------------------------------------------------------------------------------------------


def test_slowloris_head_is_cut_after_the_header_timeout(tmp_path):
    berth = _start(tmp_path)
    try:
        s = _connect(berth.url)
        started = time.monotonic()
        cut = False
        for byte in b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30:  # at most ~45 s
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if _closed_within(s, 1.0):
                cut = True
                break
        elapsed = time.monotonic() - started
        s.close()
        assert cut, "a head dribbled one byte per second was never cut off"
        assert elapsed < 2 + 3, f"cut only after {elapsed:.1f} s (header timeout 2 s)"
        assert _ping(berth.url) == 401, "the server still serves"
    finally:
        berth.stop()


def test_idle_keepalive_connection_is_closed(tmp_path):
    berth = _start(tmp_path)
    try:
        s = _connect(berth.url)
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _ = _read_response(s, 5)
        assert status == 401
        started = time.monotonic()
        assert _closed_within(s, 8), "an idle kept-alive connection stayed open"
        assert 2 < time.monotonic() - started < 6, "closed at the idle timeout (3 s)"
        s.close()
    finally:
        berth.stop()


def test_silent_sockets_under_1024_files_do_not_lock_clients_out(tmp_path):
    """1,100 silent sockets against a server started with a soft limit of 1,024 open files (hard
    4,096, which the server may raise itself to). Clients still get in while they are held, the
    silent ones are closed after the header timeout, and the log is not flooded."""
    _raise_own_nofile(4096)
    wrapper = tmp_path / "berth-limited"
    binary = os.environ.get("BERTH_BIN") or str(Path(__file__).resolve().parents[3] / "target/debug/berth")
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile=1024:4096 -- "{binary}" "$@"\n')
    wrapper.chmod(0o755)
    berth = _start(tmp_path, bin_path=wrapper, BERTH_HEADER_TIMEOUT_SECS="6")
    silent: list[socket.socket] = []
    try:
        # Five source addresses, 220 each: under the default per-address cap of 256.
        for i in range(1100):
            try:
                silent.append(_connect(berth.url, f"127.0.0.{2 + i % 5}", timeout=2))
            except OSError:
                break
        assert len(silent) == 1100
        time.sleep(0.5)  # let the server accept them all
        held_at = time.monotonic()
        statuses = []
        for _ in range(5):
            try:
                statuses.append(_ping(berth.url, timeout=3))
            except (OSError, AssertionError) as e:
                statuses.append(repr(e))
        assert statuses == [401] * 5, f"clients locked out by silent sockets: {statuses}"
        assert time.monotonic() - held_at < 6, "the checks ran while the silent sockets were held"
        deadline = time.monotonic() + 15
        open_ones = list(silent)
        while open_ones and time.monotonic() < deadline:
            open_ones = [s for s in open_ones if not _closed_within(s, 0.01)]
            time.sleep(0.2)
        assert not open_ones, f"{len(open_ones)} silent sockets still open after the header timeout"
        log = berth.log_path.read_text(errors="replace")
        assert log.count("accept failed") <= 3, "accept errors flood the log"
    finally:
        for s in silent:
            s.close()
        berth.stop()


def test_header_floods_get_431_or_a_close_never_5xx(tmp_path):
    berth = _start(tmp_path)
    try:
        host = "%s:%d" % _hostport(berth.url)
        many = "".join(f"X-Flood-{i}: {i}\r\n" for i in range(500))
        huge = "X-Huge: " + "a" * (2 * 1024 * 1024) + "\r\n"
        for extra in (many, huge):
            s = _connect(berth.url, timeout=10)
            try:
                s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: refused
            else:
                try:
                    status, _ = _read_response(s, 10)
                    assert status == 431, status
                except AssertionError as e:
                    assert "no response" in str(e), e  # closed without an answer: fine too
            s.close()
        # Half a huge head, never finished, on 50 connections: all cut at the header timeout.
        flood = [_connect(berth.url, timeout=10) for _ in range(50)]
        for s in flood:
            s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\nX-Big: ".encode() + b"b" * 200_000)
        time.sleep(2.5)
        still = [s for s in flood if not _closed_within(s, 3)]
        for s in flood:
            s.close()
        assert not still, f"{len(still)} unfinished huge heads still held past the header timeout"
        assert _ping(berth.url) == 401
    finally:
        berth.stop()


def test_connections_over_the_per_address_cap_are_closed_at_once(tmp_path):
    berth = _start(tmp_path, BERTH_MAX_CONNECTIONS_PER_IP="20", BERTH_HEADER_TIMEOUT_SECS="30")
    held: list[socket.socket] = []
    try:
        held = [_connect(berth.url, "127.0.0.2") for _ in range(20)]
        time.sleep(0.3)
        over = []
        for _ in range(100):
            over.append(_connect(berth.url, "127.0.0.2"))
        closed = [_closed_within(s, 2) for s in over[:5]]
        for s in over:
            s.close()
        assert all(closed), f"over the cap, connections were kept: {closed}"
        assert _ping(berth.url, "127.0.0.3") == 401, "another address still gets in"
        assert _ping(berth.url, "127.0.0.4") == 401
        log = berth.log_path.read_text(errors="replace")
        assert 1 <= log.count("too many connections from one address") <= 2, "logged, but not once per refusal"
        for s in held[:5]:
            s.close()
        time.sleep(0.3)
        assert _ping(berth.url, "127.0.0.2") == 401, "a closed connection frees its place"
    finally:
        for s in held:
            s.close()
        berth.stop()


def test_ecr_oversized_content_length_is_refused_before_the_body(tmp_path):
    berth = _start(tmp_path)
    try:
        for head in (_forged_ecr_head(berth.url, 1 << 30),
                     _forged_ecr_head(berth.url, 1 << 30).replace(b"Authorization", b"X-Not-Auth")):
            s = _connect(berth.url)
            started = time.monotonic()
            s.sendall(head)
            status, body = _read_response(s, 5)
            s.close()
            assert time.monotonic() - started < 2, "answered at once, without the body"
            assert status == 413, (status, body)
            err = json.loads(body)
            assert err["__type"] == "SerializationException" and "16777216" in err["message"], err
    finally:
        berth.stop()


def _flood_ecr(url: str, head: bytes, n: int, size: int) -> list:
    results: list = []
    piece = b"x" * (1 << 20)

    def one():
        try:
            s = _connect(url, timeout=15)
            try:
                s.sendall(head)
                for _ in range(size // len(piece)):
                    s.sendall(piece)
                results.append("sent")
                time.sleep(3)  # then idle, holding the connection
            finally:
                s.close()
        except OSError as e:
            results.append(type(e).__name__)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.parametrize("signed", [False, True], ids=["no-signature", "forged-signature-real-key"])
def test_ecr_bodies_in_flight_stay_within_memory(tmp_path, signed):
    """40 connections each sending a 16 MiB body: unsigned (refused from the headers) or with a
    signature whose only fault is the body hash (admitted up to the memory budget, the rest
    throttled). The server stays under 150 MiB resident throughout."""
    berth = _start(tmp_path)
    try:
        size = 16 * 1024 * 1024
        head = _forged_ecr_head(berth.url, size)
        if not signed:
            head = head.replace(b"Authorization:", b"X-Not-Authorization:")
        before = _rss_kib(berth.pid)
        threads = _flood_ecr(berth.url, head, 40, size)
        peak = before
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            peak = max(peak, _rss_kib(berth.pid))
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=1)
        peak = max(peak, _rss_kib(berth.pid))
        print(f"RSS before {before // 1024} MiB, peak {peak // 1024} MiB ({'signed' if signed else 'unsigned'})")
        assert peak < 150 * 1024, f"peak RSS {peak // 1024} MiB"
        assert _ping(berth.url) == 401
    finally:
        berth.stop()


def test_slow_ecr_body_times_out(tmp_path):
    berth = _start(tmp_path)
    try:
        s = _connect(berth.url)
        s.sendall(_forged_ecr_head(berth.url, 1000) + b'{"repositoryNames":')
        started = time.monotonic()
        status, body = _read_response(s, 10)
        s.close()
        assert status == 408, (status, body)
        assert json.loads(body)["__type"] == "RequestTimeoutException"
        assert time.monotonic() - started < 2 + 3, "cut at the body timeout (2 s)"
    finally:
        berth.stop()
