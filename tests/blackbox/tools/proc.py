"""Running client commands with bounded time and readable failures."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path


class CommandFailed(AssertionError):
    def __init__(self, cmd, result: subprocess.CompletedProcess | None, note: str = ""):
        self.cmd = cmd
        self.result = result
        out = err = ""
        code = "timeout"
        if result is not None:
            out, err, code = result.stdout, result.stderr, result.returncode
        super().__init__(
            f"command failed ({code}){': ' + note if note else ''}\n$ {shlex.join(map(str, cmd))}\n"
            f"--- stdout ---\n{_tail(out)}\n--- stderr ---\n{_tail(err)}")


def _tail(s: str, n: int = 4000) -> str:
    s = s or ""
    return s if len(s) <= n else "...\n" + s[-n:]


def run(cmd, *, env: dict | None = None, timeout: float = 120, check: bool = True,
        cwd: str | Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (a list), text output captured, killed after ``timeout``."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        res = subprocess.run([str(c) for c in cmd], env=full_env, cwd=cwd, input=input,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        fake = subprocess.CompletedProcess(cmd, -9, e.stdout or "", e.stderr or "")
        if isinstance(fake.stdout, bytes):
            fake.stdout = fake.stdout.decode(errors="replace")
        if isinstance(fake.stderr, bytes):
            fake.stderr = fake.stderr.decode(errors="replace")
        raise CommandFailed(cmd, fake, f"timed out after {timeout}s") from None
    if check and res.returncode != 0:
        raise CommandFailed(cmd, res)
    return res


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"
