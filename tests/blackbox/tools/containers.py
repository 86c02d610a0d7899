"""podman and skopeo, isolated in a temp dir.

Nothing global is read or written: storage (vfs) and run state live under the
given base dir, and registries.conf, storage.conf, containers.conf and the
signature policy are private files there too. TLS verification is off for the
loopback registry under test.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tools.proc import run

POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


class _Isolated:
    def __init__(self, base: Path, registry_hostport: str):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.tmp = self.base / "tmp"
        self.tmp.mkdir(exist_ok=True)
        self.policy = self.base / "policy.json"
        self.policy.write_text(json.dumps(POLICY))
        self.registries_conf = self.base / "registries.conf"
        self.registries_conf.write_text(
            'unqualified-search-registries = []\n\n'
            '[[registry]]\n'
            f'location = "{registry_hostport}"\n'
            'insecure = true\n')
        self.storage_conf = self.base / "storage.conf"
        self.storage_conf.write_text(
            '[storage]\ndriver = "vfs"\n'
            f'runroot = "{self.base / "run"}"\n'
            f'graphroot = "{self.base / "root"}"\n')
        self.containers_conf = self.base / "containers.conf"
        self.containers_conf.write_text(
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{self.base / "events.log"}"\n')
        (self.base / "auth.json").write_text('{"auths": {}}')  # no ~/.docker, no /run auth
        self.env = {
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "CONTAINERS_CONF": str(self.containers_conf),
            "REGISTRY_AUTH_FILE": str(self.base / "auth.json"),
            "TMPDIR": str(self.tmp),
        }


class Podman(_Isolated):
    def available(self) -> bool:
        return shutil.which("podman") is not None

    def __call__(self, *args, timeout: float = 180, check: bool = True):
        argv = ["podman",
                "--root", self.base / "root", "--runroot", self.base / "run",
                "--storage-driver", "vfs", "--tmpdir", self.base / "libpod-tmp",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                *args]
        return run(argv, env=self.env, timeout=timeout, check=check)

    def image_id(self, ref: str) -> str:
        return self("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def repo_digests(self, ref: str) -> list[str]:
        out = self("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
        return json.loads(out) or []


class Skopeo(_Isolated):
    def available(self) -> bool:
        return shutil.which("skopeo") is not None

    def __call__(self, *args, timeout: float = 180, check: bool = True):
        # registries.conf comes from CONTAINERS_REGISTRIES_CONF in self.env
        argv = ["skopeo", "--policy", self.policy, "--tmpdir", self.tmp, *args]
        return run(argv, env=self.env, timeout=timeout, check=check)


def docker_push_digest(output: str, tag: str) -> str:
    """The digest ``docker push`` printed for ``tag`` (``<tag>: digest: sha256:.. size: N``)."""
    m = re.search(rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: \d+", output, re.M)
    assert m, f"no digest line for {tag} in docker push output:\n{output}"
    return m.group(1)
