"""Fixtures of the scanning tests.

The images are built once per session (`scan_fixtures`: the hand-made ones, under a second;
`debian_fixture`: mmdebstrap, 20-45 s, only when a test asks for it) into `$BERTH_SCAN_CACHE`
if set (kept between sessions: the rootfs tarball is reused), else a session temp dir.

Tests that talk to a server start Berth themselves (`scan_server`), with administrator
credentials of their own, so they run only against Berth (as the ECR tests do); the oracle and
fixture tests need no server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scanning import fixtures


@pytest.fixture(scope="session")
def scan_cache(tmp_path_factory) -> Path:
    d = os.environ.get("BERTH_SCAN_CACHE")
    if d:
        Path(d).mkdir(parents=True, exist_ok=True)
        return Path(d)
    return tmp_path_factory.mktemp("scan-fixtures")


@pytest.fixture(scope="session")
def scan_fixtures(scan_cache) -> dict[str, fixtures.Fixture]:
    """Every fixture but `debian`, by name."""
    return fixtures.build_all(scan_cache, debian=False, log=lambda m: None)


@pytest.fixture(scope="session")
def debian_fixture(scan_cache) -> fixtures.Fixture:
    return fixtures.build_debian(scan_cache)


@pytest.fixture(scope="session")
def all_fixtures(scan_fixtures, debian_fixture) -> dict[str, fixtures.Fixture]:
    return {**scan_fixtures, "debian": debian_fixture}


def _skip_unless_berth(config):
    if (config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("the scanning API tests start berth with credentials of their own")


@pytest.fixture
def berth_only(request):
    _skip_unless_berth(request.config)
