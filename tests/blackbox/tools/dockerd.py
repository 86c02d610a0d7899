"""A private, throw-away Docker engine for the client tests.

The machine has no running Docker engine, so the session starts its own
``dockerd`` (as root) with everything under one temp dir: vfs storage, its own
containerd (dockerd spawns it under ``--exec-root``), no iptables, no bridge,
no daemon.json from /etc, and a unix socket that only this session uses.
Only image operations are used (import, load, tag, push, pull, save, rmi):
there is no container runtime involved.

Also usable by hand:

    python3 -m tools.dockerd /tmp/mydocker     # from tests/blackbox
    # prints DOCKER_HOST=unix:///tmp/mydocker/docker.sock, Ctrl-C stops it
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.proc import log_tail, run

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class DockerUnavailable(RuntimeError):
    """dockerd could not be started here; the message says exactly why."""


def _reason_from_log(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    bad = [ln for ln in text.splitlines()
           if re.search(r"level=(fatal|error)|failed to start|panic", ln)]
    picked = bad[-5:] if bad else text.splitlines()[-10:]
    return "\n".join(picked) or "(dockerd wrote nothing to its log)"


class DockerDaemon:
    def __init__(self, base: Path | None = None):
        # Unix socket paths are limited to 108 bytes and containerd puts
        # several sockets under exec-root: keep the base short.
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix="berth-dockerd-", dir="/tmp"))
        self._own_base = base is None
        self.sock = self.base / "docker.sock"
        self.log = self.base / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.host = f"unix://{self.sock}"
        self.env = {
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(self.base / "cli"),   # no ~/.docker/config.json
            "DOCKER_CLI_HINTS": "false",
        }

    def argv(self) -> list[str]:
        daemon_json = self.base / "daemon.json"
        daemon_json.write_text(json.dumps({}))
        return [
            "dockerd",
            "--config-file", str(daemon_json),
            "--data-root", str(self.base / "data"),
            "--exec-root", str(self.base / "exec"),
            "--pidfile", str(self.base / "docker.pid"),
            "-H", self.host,
            "--storage-driver", "vfs",
            "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--bridge", "none",
            "--userland-proxy=false",
            "--insecure-registry", "127.0.0.0/8",
            "--log-level", "info",
        ]

    def start(self) -> "DockerDaemon":
        if shutil.which("dockerd") is None:
            raise DockerUnavailable("dockerd is not installed (Debian package docker.io)")
        if shutil.which("docker") is None:
            raise DockerUnavailable("the docker CLI is not installed")
        if os.geteuid() != 0:
            raise DockerUnavailable("dockerd needs root and this session is uid %d" % os.geteuid())
        (self.base / "cli").mkdir(parents=True, exist_ok=True)
        logf = open(self.log, "wb")
        try:
            self.proc = subprocess.Popen(self.argv(), stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reason = _reason_from_log(self.log)
                self.stop()
                raise DockerUnavailable(
                    f"dockerd exited with status {self.proc.returncode} at start:\n{reason}")
            if self.sock.exists():
                r = run(["docker", "version", "--format", "{{.Server.Version}}"],
                        env=self.env, timeout=15, check=False)
                if r.returncode == 0:
                    return self
                last = r.stderr.strip()
            time.sleep(0.2)
        reason = _reason_from_log(self.log)
        self.stop()
        raise DockerUnavailable(
            f"dockerd did not answer on {self.sock} within {START_TIMEOUT}s "
            f"(last client error: {last}); dockerd log:\n{reason}")

    def docker(self, *args, timeout: float = 180, check: bool = True):
        return run(["docker", *args], env=self.env, timeout=timeout, check=check)

    def stop(self) -> None:
        """SIGTERM dockerd (it stops its containerd), bounded; then SIGKILL
        whatever of ours is left; then remove the temp dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # containerd is dockerd's child in the same session; if dockerd died
        # hard it may be left behind: kill it by its own pid file.
        for pidfile in (self.base / "exec" / "containerd" / "containerd.pid",):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue  # already gone
            if str(self.base).encode() in cmdline:  # ours, not a reused pid
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._own_base:
            # vfs leaves read-only dirs sometimes; make removal best-effort
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)


def main(argv: list[str]) -> int:
    base = Path(argv[1]) if len(argv) > 1 else None
    if base:
        base.mkdir(parents=True, exist_ok=True)
    d = DockerDaemon(base)
    try:
        d.start()
    except DockerUnavailable as e:
        print(f"dockerd unavailable: {e}", file=sys.stderr)
        return 1
    print(f"DOCKER_HOST={d.host}\nDOCKER_CONFIG={d.env['DOCKER_CONFIG']}\nlog: {d.log}", flush=True)
    sigs = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        signal.sigwait(sigs)
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
