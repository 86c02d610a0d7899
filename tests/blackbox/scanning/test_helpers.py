"""The comparison helpers of the server tests catch what they are meant to catch (no server)."""

from __future__ import annotations

import datetime

import pytest

from scanning import scanapi
from scanning.test_api import check_shape, ecr_model


def test_precision_and_recall_are_reported_and_enforced():
    want = {("CVE-1", "a", "1"), ("CVE-2", "b", "2")}
    scanapi.assert_same_findings([("CVE-1", "a", "1"), ("CVE-2", "b", "2")], want, "ok")
    with pytest.raises(AssertionError, match=r"precision 0\.667, recall 1\.000"):
        scanapi.assert_same_findings([("CVE-1", "a", "1"), ("CVE-2", "b", "2"), ("CVE-3", "c", "3")], want, "fp")
    with pytest.raises(AssertionError, match=r"precision 1\.000, recall 0\.500"):
        scanapi.assert_same_findings([("CVE-1", "a", "1")], want, "fn")
    with pytest.raises(AssertionError, match="more than once"):
        scanapi.assert_same_findings([("CVE-1", "a", "1"), ("CVE-1", "a", "1"), ("CVE-2", "b", "2")], want, "dup")


def finding(vid, name, version, status="ACTIVE", **vp):
    return {"status": status, "packageVulnerabilityDetails": {
        "vulnerabilityId": vid, "vulnerablePackages": [{"name": name, "version": version, **vp}]}}


def test_enhanced_triples_spellings():
    got = scanapi.enhanced_triples([
        finding("CVE-1", "openssl", "3.0.7", epoch=1, release="27.el9"),
        finding("CVE-2", "zlib1g", "1:1.2.13.dfsg-1", epoch=1),  # full version given, epoch too
        finding("CVE-3", "golang.org/x/net", "v0.17.0", packageManager="GOBINARY"),
        finding("CVE-4", "old", "1.0", status="CLOSED"),
    ], {"1:1.2.13.dfsg-1"})
    assert got == [("CVE-1", "openssl", "1:3.0.7-27.el9"), ("CVE-2", "zlib1g", "1:1.2.13.dfsg-1"),
                   ("CVE-3", "golang.org/x/net", "0.17.0")]


def test_basic_triples_need_package_attributes():
    f = {"name": "CVE-1", "severity": "LOW", "attributes": [{"key": "package_name", "value": "a"},
                                                              {"key": "package_version", "value": "1"}]}
    assert scanapi.basic_triples([f]) == [("CVE-1", "a", "1")]
    with pytest.raises(AssertionError):
        scanapi.basic_triples([{"name": "CVE-1", "attributes": []}])


def test_shape_check_against_the_model():
    shape = ecr_model().shape_for("EnhancedImageScanFinding")
    now = datetime.datetime.now(datetime.timezone.utc)
    good = {"awsAccountId": "123456789012", "findingArn": "arn:x", "firstObservedAt": now, "lastObservedAt": now,
            "status": "ACTIVE", "severity": "HIGH", "type": "PACKAGE_VULNERABILITY", "score": 9.8,
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-1", "cvss": [{"baseScore": 9.8, "version": "3.1"}],
                                            "vulnerablePackages": [{"name": "a", "version": "1", "epoch": 0,
                                                                    "sourceLayerHash": "sha256:00"}]},
            "resources": [{"type": "AWS_ECR_CONTAINER_IMAGE", "id": "x", "tags": {},
                           "details": {"awsEcrContainerImage": {"imageHash": "sha256:00", "imageTags": ["t"]}}}]}
    check_shape(good, shape, "f")
    with pytest.raises(AssertionError, match="not in"):
        check_shape({**good, "bogus": 1}, shape, "f")
    with pytest.raises(AssertionError):
        check_shape({**good, "score": "high"}, shape, "f")
    with pytest.raises(AssertionError):
        check_shape({**good, "firstObservedAt": "yesterday"}, shape, "f")
