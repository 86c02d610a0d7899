"""Continuous scanning: after a second import (`osv/v2`, while the server runs), images under a
CONTINUOUS_SCAN rule are matched again from their stored inventories, without reading a layer:
the new findings appear, and the one that v2 says is fixed by a version below the installed
one is CLOSED or gone, as ECR's enhanced findings do."""

from __future__ import annotations

import time

from scanning import golden
from scanning.scanapi import (OSV_V1, OSV_V2, all_findings, assert_same_findings, enhanced_config, enhanced_triples,
                              expected_findings, expected_triples, start, wait_scan)

PICKUP_SECS = 60  # goal: every affected image re-matched within 60 s of an import


def test_a_second_import_rematches_without_reading_layers(tmp_path, berth_only, scan_fixtures):
    srv = start(tmp_path)
    try:
        v1 = srv.import_osv(OSV_V1)
        ecr = srv.ecr()
        enhanced_config(ecr, "CONTINUOUS_SCAN", "cont/*")
        fx = scan_fixtures["languages"]
        images = {}
        for name in ("languages", "layered", "alpine"):
            repo = f"cont/{name}"
            ecr.create_repository(repositoryName=repo)
            images[name] = (repo, srv.push(repo, scan_fixtures[name]))
        for name, (repo, digest) in images.items():
            r = wait_scan(ecr, repo, digest, started=False)
            # ECR shows an image under continuous scanning as ACTIVE once matched.
            assert r["imageScanStatus"]["status"] == "ACTIVE", (name, r["imageScanStatus"])
        repo, digest = images["languages"]
        found_v1 = expected_findings(fx, "enhanced", "v1")
        _, _, enhanced = all_findings(ecr, repo, digest)
        versions = {f["version"] for f in found_v1}
        assert_same_findings(enhanced_triples(enhanced, versions), expected_triples(found_v1), "languages, v1")
        first_seen = {(f["packageVulnerabilityDetails"]["vulnerabilityId"],
                       f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"]): f["firstObservedAt"]
                      for f in enhanced}
        # The counters are written after a worker step, a moment after the scans' results: take
        # them once they have settled.
        reads, settle_until = srv.layer_reads(), time.monotonic() + 10
        while time.monotonic() < settle_until:
            time.sleep(1.5)
            now = srv.layer_reads()
            if now == reads:
                break
            reads = now
        assert reads > 0, "the first scans read the layers"

        v2 = srv.import_osv(OSV_V2)
        assert v2["source_updated_at"] > v1["source_updated_at"], (v1, v2)
        found_v2 = expected_findings(fx, "enhanced", "v2")
        want = expected_triples(found_v2)
        versions |= {f["version"] for f in found_v2}

        def current():
            r, _, enh = all_findings(ecr, repo, digest)
            return r, enh

        deadline = time.monotonic() + PICKUP_SECS
        while True:
            r, enh = current()
            if set(enhanced_triples(enh, versions)) == want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert_same_findings(enhanced_triples(enh, versions), want, "languages after importing v2")
        assert r["imageScanFindings"]["vulnerabilitySourceUpdatedAt"].isoformat().startswith("2026-07-01T00:00:00")
        # The finding v2 fixed is closed or gone; the new ones are there; the others kept their first sighting.
        fixed = [f for f in enh if f["packageVulnerabilityDetails"]["vulnerabilityId"] == "CVE-2023-32681"]
        assert all(f["status"] == "CLOSED" for f in fixed), fixed
        for f in enh:
            key = (f["packageVulnerabilityDetails"]["vulnerabilityId"],
                   f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"])
            if key in first_seen and f["status"] == "ACTIVE":
                assert f["firstObservedAt"] == first_seen[key], (key, f)
        new = {t[:2] for t in want} - {t[:2] for t in expected_triples(found_v1)}
        assert new == {("CVE-2026-10100", "zlib1g"), ("CVE-2026-40100", "express")}
        # The other images were matched again too.
        for name in ("layered", "alpine"):
            other_repo, other_digest = images[name]
            found = expected_findings(scan_fixtures[name], "enhanced", "v2")
            _, _, enh = all_findings(ecr, other_repo, other_digest)
            assert_same_findings(enhanced_triples(enh, {f["version"] for f in found}), expected_triples(found),
                                 f"{name} after importing v2")
        assert srv.layer_reads() == reads, "re-matching read layers again"
        assert golden.load("v2", "languages", "enhanced")  # the expectation is the checked-in one
    finally:
        srv.stop()
