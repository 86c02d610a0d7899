"""Online garbage collection in the real binary: a deleted image's own blob leaves the disk
(or, on a cluster, the S3 bucket) after the grace period, blobs shared with a kept image stay,
and pulls keep working.

Berth-only (it starts its own server with a short grace and interval); skipped for other
targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conformance.ociclient import MT_OCI_CONFIG as MT_CONFIG
from conformance.ociclient import MT_OCI_LAYER as MT_LAYER
from conformance.ociclient import (MT_OCI_MANIFEST, OciClient, descriptor, digest_of, image_config,
                                   oci_image_manifest, random_bytes, verify_digest)
from conftest import spawn_berth
from tools import store
from tools.berth import backend_env

GRACE_SECS = 2


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("garbage-collection tests start berth themselves")


def stored(data_dir: Path, digest: str) -> bool:
    """Whether the blob's bytes are at rest (a file in the data dir, or an object in S3)."""
    return store.of(data_dir).exists(store.blob_key(digest))


def pull(oci: OciClient, repo: str, tag: str) -> None:
    r = oci.get_manifest(repo, tag)
    assert r.status_code == 200, r.text
    m = r.json()
    for desc in [m["config"], *m["layers"]]:
        b = oci.get_blob(repo, desc["digest"])
        assert b.status_code == 200, (desc["digest"], b.status_code)
        assert verify_digest(b.content, desc["digest"])


def storage(data: Path) -> dict:
    binary = os.environ.get("BERTH_BIN") or str(Path(__file__).resolve().parents[3] / "target" / "debug" / "berth")
    env = backend_env(data, {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")})
    r = subprocess.run([binary, "admin", "--data", str(data), "storage"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_deleted_image_blobs_leave_the_disk_after_the_grace_shared_ones_stay(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "BERTH_GC_INTERVAL_SECS": "1", "BERTH_GC_GRACE_SECS": str(GRACE_SECS),
           "BERTH_CREATE_ON_PUSH": "true"}
    proc = spawn_berth(data, env=env)
    oci = OciClient(proc.url)
    try:
        repo = "gc/app"
        config, shared, unique = image_config("gc"), random_bytes(300_000), random_bytes(200_000)
        for blob in (config, shared, unique):
            oci.push_blob(repo, blob)
        cfg = descriptor(MT_CONFIG, config)
        kept = oci_image_manifest(cfg, [descriptor(MT_LAYER, shared)])
        doomed = oci_image_manifest(cfg, [descriptor(MT_LAYER, shared), descriptor(MT_LAYER, unique)])
        oci.push_manifest(repo, "kept", kept, MT_OCI_MANIFEST)
        oci.push_manifest(repo, "doomed", doomed, MT_OCI_MANIFEST)
        pull(oci, repo, "doomed")

        deleted_at = time.monotonic()
        r = oci.delete_manifest(repo, digest_of(doomed))
        assert r.status_code == 202, r.text
        if not stored(data, digest_of(unique)):
            assert time.monotonic() - deleted_at >= GRACE_SECS, "collected before the grace had passed"

        # Bounded wait for the collector (runs every second), pulling the kept image meanwhile.
        deadline = time.monotonic() + 60
        while stored(data, digest_of(unique)):
            assert time.monotonic() < deadline, "the deleted image's blob was never collected"
            pull(oci, repo, "kept")
            time.sleep(0.2)
        assert time.monotonic() - deleted_at >= GRACE_SECS

        for blob in (config, shared):
            assert stored(data, digest_of(blob))
        assert oci.get_blob(repo, digest_of(unique)).status_code == 404
        pull(oci, repo, "kept")
        # `berth admin storage` shows what the repository holds now.
        usage = storage(data)
        (app,) = [r for r in usage["Repositories"] if r["repositoryName"] == repo]
        assert app["manifests"] == 1 and app["blobs"] == 2
        assert app["blobBytes"] == len(config) + len(shared)
        assert usage["TotalBlobBytes"] == len(config) + len(shared)
        # The collected blob can be pushed again and used.
        oci.push_blob(repo, unique)
        oci.push_manifest(repo, "again", doomed, MT_OCI_MANIFEST)
        pull(oci, repo, "again")
    finally:
        oci.s.close()
        proc.stop()
    assert proc.proc.returncode == 0, proc.log_tail()
