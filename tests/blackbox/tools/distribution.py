"""Start CNCF distribution 2.8 (Debian ``docker-registry``) on a free loopback
port, filesystem storage in a temp dir, deletes enabled. Used as the
reference target, and by the client tests' fallback fixture when the shared
``tests/blackbox/conftest.py`` is absent."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tools.proc import log_tail
from tools.registry_api import wait_http_ok

BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Distribution:
    kind = "distribution"

    def __init__(self, base: Path):
        self.base = Path(base)
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, attempts: int = 3) -> "Distribution":
        binary = shutil.which("docker-registry") or BINARY
        if not Path(binary).exists():
            raise RuntimeError("docker-registry (Debian package docker-registry) is not installed")
        (self.base / "storage").mkdir(parents=True, exist_ok=True)
        last = ""
        for attempt in range(attempts):  # the free port can be taken in between
            port = free_port()
            cfg = self.base / "config.yml"
            cfg.write_text(
                "version: 0.1\n"
                "log:\n  level: warn\n"
                "storage:\n"
                f"  filesystem:\n    rootdirectory: {self.base / 'storage'}\n"
                "  delete:\n    enabled: true\n"
                "http:\n"
                f"  addr: 127.0.0.1:{port}\n"
                "  secret: berth-blackbox-not-a-secret\n")
            log = self.base / f"registry-{attempt}.log"
            with open(log, "wb") as lf:
                self.proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=lf,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.url = f"http://127.0.0.1:{port}"
            try:
                wait_http_ok(self.url + "/v2/", timeout=20, proc=self.proc)
                return self
            except (RuntimeError, TimeoutError) as e:
                last = f"{e}\n{log_tail(log)}"
                self.stop()
        raise RuntimeError(f"docker-registry did not start: {last}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
