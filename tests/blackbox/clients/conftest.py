"""Fixtures for the real-client tests (docker, podman, skopeo).

The registry under test comes from the shared ``registry`` fixture in
``tests/blackbox/conftest.py`` (``--target berth|distribution|url``).

Run from ``tests/blackbox`` (pytest.ini's testpaths name only conformance/,
so give the directories)::

    python3 -m pytest clients crash                      # Berth: target/debug/berth
    python3 -m pytest clients crash --target=distribution
    REGISTRY_URL=http://127.0.0.1:5000 python3 -m pytest clients --target=url

Needs root (dockerd) and the Debian packages docker.io, podman, skopeo and
docker-registry. Each client is isolated in a temp dir: a private dockerd
(``tools/dockerd.py``; vfs, own containerd, own socket) and podman/skopeo
with private storage, registries.conf and policy (``tools/containers.py``).
"""

from __future__ import annotations

import uuid

import pytest

from tools.containers import Podman, Skopeo
from tools.dockerd import DockerDaemon, DockerUnavailable
from tools.registry_api import assert_loopback, hostport


@pytest.fixture(scope="session")
def registry_url(registry) -> str:
    url = registry.url.rstrip("/")
    assert_loopback(url)
    return url


@pytest.fixture(scope="session")
def registry_host(registry_url) -> str:
    """``127.0.0.1:PORT``, the registry part of an image reference."""
    return hostport(registry_url)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Distinguishes this session's repositories from any earlier session's
    on a long-lived registry (``--target url``)."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def repo(request, run_id) -> str:
    """A fresh repository name for one test (two path components, lower case)."""
    name = request.node.name.lower()
    name = "".join(c if c.isalnum() else "-" for c in name)[:40].strip("-")
    return f"clients-{run_id}/{name}"


@pytest.fixture(scope="session")
def dockerd():
    """A private dockerd for the session; tests skip with dockerd's own error
    when it cannot run on this machine."""
    daemon = DockerDaemon()
    try:
        daemon.start()
    except DockerUnavailable as e:
        pytest.skip(f"cannot start a private dockerd: {e}")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def podman(tmp_path_factory, registry_host):
    p = Podman(tmp_path_factory.mktemp("podman"), registry_host)
    if not p.available():
        pytest.skip("podman is not installed")
    return p


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory, registry_host):
    s = Skopeo(tmp_path_factory.mktemp("skopeo"), registry_host)
    if not s.available():
        pytest.skip("skopeo is not installed")
    return s
