"""Names on the loopback address for clients that resolve host names themselves (docker, podman,
skopeo): lines added to /etc/hosts for the length of a test and removed afterwards, exactly those
lines and nothing else. Needs write access to /etc/hosts (root); `writable()` says whether a
test can run.

Tests that talk HTTP themselves need none of this: they send the request to 127.0.0.1 with a
`Host` header naming the registry.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

HOSTS = Path("/etc/hosts")


def writable() -> bool:
    return os.access(HOSTS, os.W_OK)


def add_hosts_lines(lines: list[str]) -> None:
    """Append `lines` to /etc/hosts in place (it may be a bind mount: no rename)."""
    with open(HOSTS, "r+", encoding="utf-8") as f:
        text = f.read()
        f.write(("" if text.endswith("\n") or not text else "\n") + "".join(ln + "\n" for ln in lines))


def remove_hosts_lines(lines: list[str]) -> None:
    """Remove exactly `lines` (each once) from /etc/hosts, leaving every other line as it is."""
    with open(HOSTS, "r+", encoding="utf-8") as f:
        kept, todo = [], list(lines)
        for ln in f.read().splitlines(keepends=True):
            if ln.rstrip("\n") in todo:
                todo.remove(ln.rstrip("\n"))
            else:
                kept.append(ln)
        f.seek(0)
        f.write("".join(kept))
        f.truncate()


@contextlib.contextmanager
def loopback_names(names: list[str], marker: str) -> Iterator[None]:
    """`127.0.0.1 <name> # <marker>` for each of `names` while the block runs; afterwards no line
    carrying `marker` is left (make it unique to the test, e.g. with the random domain)."""
    marker = marker if marker.startswith("#") else f"# {marker}"
    lines = [f"127.0.0.1 {name} {marker}" for name in names]
    add_hosts_lines(lines)
    try:
        yield
    finally:
        remove_hosts_lines(lines)
        assert marker not in HOSTS.read_text(), "the test's /etc/hosts lines are still there"
