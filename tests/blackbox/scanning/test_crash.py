"""kill -9 during a scan: after a restart on the same data the scan finishes COMPLETE with the
right findings, and is never left IN_PROGRESS.

The image is the Debian rootfs under a layer of 2 GiB of zeros (a few MB of gzip that takes
seconds to inflate), so the scan is still running when the server is killed."""

from __future__ import annotations

import time

import pytest

from scanning import fixtures
from scanning.scanapi import (OSV_V1, all_findings, assert_same_findings, basic_config, basic_triples, describe,
                              expected_findings, expected_triples, start, wait_scan)

BIG_GIB = 2.0
RECOVERY_SECS = 120


@pytest.fixture(scope="session")
def big_fixture(scan_cache, debian_fixture):
    return fixtures.build_big(scan_cache, debian_fixture, BIG_GIB)


@pytest.mark.embedded_only("kills the one berth process in the middle of a scan")
def test_kill9_during_a_scan_then_restart_completes_it(tmp_path, berth_only, big_fixture, debian_fixture):
    srv = start(tmp_path)
    try:
        srv.import_osv(OSV_V1)
        ecr = srv.ecr()
        basic_config(ecr)
        repo = "crash/big"
        ecr.create_repository(repositoryName=repo)
        digest = srv.push(repo, big_fixture)
        ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digest})
        status = describe(ecr, repo, digest)["imageScanStatus"]["status"]
        assert status in ("IN_PROGRESS", "PENDING"), \
            f"the scan was {status} before it could be interrupted; make the big layer bigger"
        time.sleep(1.0)  # the scan is claimed within poll_ms (0.5 s) and runs for seconds: kill it midway
        srv.proc.kill9()

        srv.restart()
        ecr = srv.ecr()
        r = wait_scan(ecr, repo, digest, timeout=RECOVERY_SECS)
        assert r["imageScanStatus"]["status"] == "COMPLETE", r["imageScanStatus"]
        _, basic, _ = all_findings(ecr, repo, digest)
        assert_same_findings(basic_triples(basic), expected_triples(expected_findings(debian_fixture, "basic")),
                             "the big image after kill -9 and restart")
        # The interrupted scan did not use up the image's daily scan: it is the one that completed.
        detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])["imageDetails"][0]
        assert detail["imageScanStatus"]["status"] == "COMPLETE"
    finally:
        srv.stop()
