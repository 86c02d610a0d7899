"""Berth's findings against the oracle's, for every fixture: precision and recall 1.0, basic
(StartImageScan, OS packages) and enhanced (scan on push, OS and language packages).

One server per scan type for the module, with `osv/v1` imported; each fixture goes to its own
repository.
"""

from __future__ import annotations

from collections import Counter

import pytest

from scanning.conftest import _skip_unless_berth

from scanning import fixtures, golden, oracle
from scanning.scanapi import (OSV_V1, all_findings, assert_same_findings, basic_triples, basic_config,
                              enhanced_config, enhanced_triples, expected_findings, expected_triples, scan_now,
                              start, wait_scan)

FIXTURES = sorted(fixtures.HAND_MADE) + ["debian"]


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory, request):
    _skip_unless_berth(request.config)
    srv = start(tmp_path_factory.mktemp("scan-basic"))
    summary = srv.import_osv(OSV_V1)
    assert summary["advisories"] > 0, summary
    basic_config(srv.ecr())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def enhanced_server(tmp_path_factory, request):
    _skip_unless_berth(request.config)
    srv = start(tmp_path_factory.mktemp("scan-enhanced"))
    srv.import_osv(OSV_V1)
    enhanced_config(srv.ecr(), "SCAN_ON_PUSH", "*")
    yield srv
    srv.stop()


def fixture_named(name, scan_fixtures, request):
    return request.getfixturevalue("debian_fixture") if name == "debian" else scan_fixtures[name]


@pytest.mark.parametrize("name", FIXTURES)
def test_basic_findings_equal_the_oracle(basic_server, scan_fixtures, request, name):
    fx = fixture_named(name, scan_fixtures, request)
    ecr = basic_server.ecr()
    repo = f"acc-basic/{name}"
    ecr.create_repository(repositoryName=repo)
    digest = basic_server.push(repo, fx)
    result = scan_now(ecr, repo, digest)
    status = result["imageScanStatus"]
    assert status["status"] == fx.status, status
    if fx.status == "UNSUPPORTED_IMAGE":
        assert status.get("description"), "UNSUPPORTED_IMAGE says why"
        assert not result.get("imageScanFindings", {}).get("findings"), result
        return
    found = expected_findings(fx, "basic")
    _, basic, enhanced = all_findings(ecr, repo, digest)
    assert enhanced == [], "a basic scan reports `findings`, not `enhancedFindings`"
    assert_same_findings(basic_triples(basic), expected_triples(found), f"basic scan of {name}")
    # Severity and CVSS attributes as the oracle has them.
    by_key = {(f["id"], f["package"], f["version"]): f for f in found}
    for f in basic:
        a = {x["key"]: x.get("value") for x in f["attributes"]}
        want = by_key[(f["name"], a["package_name"], a["package_version"])]
        assert f["severity"] == want["severity"], (f, want)
        if "cvss3" in want:
            assert a.get("CVSS3_VECTOR") == want["cvss3"]["vector"], f
            assert float(a["CVSS3_SCORE"]) == want["cvss3"]["score"], f
        assert all(len(x["key"]) <= 128 and len(x.get("value") or "") <= 256 for x in f["attributes"]), f
        assert len(f["attributes"]) <= 50
    summary = result["imageScanFindings"]
    assert summary.get("findingSeverityCounts", {}) == dict(Counter(f["severity"] for f in found)), summary
    assert summary["vulnerabilitySourceUpdatedAt"].isoformat().startswith("2026-06-01T00:00:00")
    assert summary["imageScanCompletedAt"]
    # DescribeImages carries the same status and summary.
    detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])["imageDetails"][0]
    assert detail["imageScanStatus"]["status"] == "COMPLETE", detail
    assert detail["imageScanFindingsSummary"]["findingSeverityCounts"] == summary.get("findingSeverityCounts", {})


@pytest.mark.parametrize("name", FIXTURES)
def test_enhanced_findings_equal_the_oracle(enhanced_server, scan_fixtures, request, name):
    fx = fixture_named(name, scan_fixtures, request)
    ecr = enhanced_server.ecr()
    repo = f"acc-enhanced/{name}"
    ecr.create_repository(repositoryName=repo)
    digest = enhanced_server.push(repo, fx)
    result = wait_scan(ecr, repo, digest, started=False)  # scan on push, by the registry's rule
    assert result["imageScanStatus"]["status"] == fx.status, result["imageScanStatus"]
    if fx.status != "COMPLETE":
        return
    found = expected_findings(fx, "enhanced")
    _, basic, enhanced = all_findings(ecr, repo, digest)
    assert basic == [], "an enhanced scan reports `enhancedFindings`"
    triples = enhanced_triples(enhanced, {f["version"] for f in found})
    assert_same_findings(triples, expected_triples(found), f"enhanced scan of {name}")
    # The layer each vulnerable package comes from.
    layers = fx.truth()["layers"] if not fx.children else None
    if layers:
        want_layer = {(f["id"], f["package"]): layers[f["layer"]] for f in found}
        for f in enhanced:
            d = f["packageVulnerabilityDetails"]
            for vp in d["vulnerablePackages"]:
                assert vp["sourceLayerHash"] == want_layer[(d["vulnerabilityId"], vp["name"])], (name, vp)


def test_index_children_are_scanned_and_the_index_reports_their_union(basic_server, scan_fixtures):
    fx = scan_fixtures["index"]
    ecr = basic_server.ecr()
    repo = "acc-basic/index-children"
    ecr.create_repository(repositoryName=repo)
    digest = basic_server.push(repo, fx)
    result = scan_now(ecr, repo, digest)
    assert result["imageScanStatus"]["status"] == "COMPLETE", result["imageScanStatus"]
    union = set()
    records = oracle.load_osv(OSV_V1)
    for child in fx.children:
        want = expected_triples(oracle.expected(child.truth(), records, "basic"))
        union |= want
        r = wait_scan(ecr, repo, child.digest, started=False)
        assert r["imageScanStatus"]["status"] == "COMPLETE", (child.architecture, r["imageScanStatus"])
        _, basic, _ = all_findings(ecr, repo, child.digest)
        assert_same_findings(basic_triples(basic), want, f"basic scan of the {child.architecture} image")
    _, basic, _ = all_findings(ecr, repo, digest)
    assert_same_findings(basic_triples(basic), union, "basic scan of the index")
    assert union == {(f["id"], f["package"], f["version"]) for f in golden.load("v1", "index", "basic")["findings"]}
    # The two children differ, so the union is more than either.
    per_child = [expected_triples(oracle.expected(c.truth(), records, "basic")) for c in fx.children]
    assert per_child[0] != per_child[1]
