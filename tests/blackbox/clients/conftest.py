"""Fixtures for the real-client tests (docker, podman, skopeo).

The registry under test comes from the shared ``registry`` fixture in
``tests/blackbox/conftest.py`` (``--target berth|distribution|url``). If that
file is absent (e.g. this directory is run on its own), a simple fallback
defines ``registry``: ``REGISTRY_URL`` if set, else a private CNCF
distribution (``docker-registry``) on a free loopback port.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tools.containers import Podman, Skopeo
from tools.dockerd import DockerDaemon, DockerUnavailable
from tools.registry_api import assert_loopback, hostport

_SHARED_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

if not _SHARED_CONFTEST.exists():

    @pytest.fixture(scope="session")
    def registry(tmp_path_factory):
        """Fallback only: see the module docstring."""
        url = os.environ.get("REGISTRY_URL")
        if url:
            yield SimpleNamespace(url=url.rstrip("/"), kind="url")
            return
        from tools.distribution import Distribution

        reg = Distribution(tmp_path_factory.mktemp("distribution")).start()
        try:
            yield reg
        finally:
            reg.stop()


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
    name = "".join(c if c.isalnum() else "-" for c in name).strip("-")[:40]
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
