"""Repository-name validation and the error document.

Spec: <name> MUST match
  [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*
The spec names the code (NAME_INVALID, "invalid repository name") but not the
status, and its endpoint table lists 404 as the failure of most endpoints. So a
name outside the grammar may be refused as invalid (400 NAME_INVALID) or be
treated as a repository that cannot exist (404 NAME_UNKNOWN); code and status
must agree, and nothing may be created under such a name.

Every error body checked through ``expect_error`` must be the spec's JSON
document ({"errors":[{"code","message"}]}, application/json) for Berth.
"""

from __future__ import annotations

import uuid

import pytest

from conformance.checks import SPEC_ERROR_CODES, describe, error_codes, expect_status
from conformance.ociclient import (EMPTY_DESCRIPTOR, EMPTY_JSON, MT_OCI_MANIFEST, digest_of,
                                   oci_image_manifest)


def bad_names():
    u = uuid.uuid4().hex[:8]
    return {
        "uppercase": f"conf/Upper-{u}",
        "uppercase-first": f"Conf{u}/x",
        "double-slash": f"conf//x{u}",
        "trailing-slash": f"conf/x{u}/",
        "leading-dash": f"-conf{u}/x",
        "trailing-dot": f"conf/x{u}.",
        "triple-underscore": f"conf/a___b{u}",
    }


# What distribution 2.8 does instead of refusing (the spec allows 400
# NAME_INVALID or 404, with any 4xx body format, so its plain-text 404s pass):
DISTRIBUTION_SERVES = {
    # its router matches the valid lowercase tail of the path and serves the
    # request: POST uploads -> 202, PUT manifest -> 400 MANIFEST_BLOB_UNKNOWN
    ("uppercase-first", "post-upload"), ("uppercase-first", "put-manifest"),
}
# it cleans the path and answers 301 to /v2/conf/x/... for every operation
DISTRIBUTION_REDIRECTS = {"double-slash", "trailing-slash"}


def _check_invalid_name(resp, registry):
    assert resp.status_code in (400, 404), \
        f"invalid repository name must be refused (400/404): {describe(resp)}"
    if resp.request.method == "HEAD":
        return
    codes = error_codes(resp)
    if codes is None:
        assert not registry.strict_errors, f"error body must be JSON: {describe(resp)}"
        return
    if resp.status_code == 400:
        assert "NAME_INVALID" in codes, f"400 must carry NAME_INVALID: {describe(resp)}"
    elif registry.is_berth:
        assert "NAME_UNKNOWN" in codes, f"404 must carry NAME_UNKNOWN: {describe(resp)}"
    else:
        # a 404 for the resource asked for is also a refusal
        assert set(codes) & {"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"}, describe(resp)


OPERATIONS = ["post-upload", "put-manifest", "get-manifest", "head-manifest", "get-blob",
              "tags-list"]


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("kind", list(bad_names()))
def test_invalid_repository_name(oci, registry, request, kind, op):
    if registry.is_distribution and (kind, op) in DISTRIBUTION_SERVES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "distribution 2.8 accepts a name whose first component has upper case "
            "(its route regexp matches the lowercase tail); spec: <name> MUST match "
            "the name grammar")))
    if registry.is_distribution and kind in DISTRIBUTION_REDIRECTS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "distribution 2.8 cleans the path and answers 301 to a different "
            "repository (conf/x) instead of refusing a name outside the grammar")))
    name = bad_names()[kind]
    manifest = oci_image_manifest(dict(EMPTY_DESCRIPTOR), [])
    if op == "post-upload":
        r = oci.start_upload(name)
    elif op == "put-manifest":
        r = oci.put_manifest(name, "latest", manifest, MT_OCI_MANIFEST)
    elif op == "get-manifest":
        r = oci.get_manifest(name, "latest")
    elif op == "head-manifest":
        r = oci.head_manifest(name, "latest")
    elif op == "get-blob":
        r = oci.get_blob(name, digest_of(EMPTY_JSON))
    else:
        r = oci.tags_list(name)
    _check_invalid_name(r, registry)


def test_invalid_name_creates_nothing(oci, registry):
    name = f"conf/Nope{uuid.uuid4().hex[:8]}"
    oci.start_upload(name)
    oci.put_manifest(name, "latest", oci_image_manifest(dict(EMPTY_DESCRIPTOR), []), MT_OCI_MANIFEST)
    repos, _ = oci.paginate("/v2/_catalog", "repositories")
    assert name not in repos
    assert name.lower() not in repos


def test_long_valid_repository_name(oci):
    """A 200-character, many-component name is valid and must work
    (the spec only advises staying below ~255 with the host name)."""
    u = uuid.uuid4().hex[:8]
    name = f"conf/long-{u}/" + "/".join(["segment-" + str(i) for i in range(20)])
    name = name[:200].rstrip("-/")
    img = oci.push_image(name, "v1")
    r = oci.get_manifest(name, "v1")
    expect_status(r, 200)
    assert r.content == img.manifest


def test_name_grammar_separators(oci):
    """Separators allowed by the grammar: '.', '_', '__', one or more '-'."""
    u = uuid.uuid4().hex[:8]
    name = f"conf/a.b_c__d---e-{u}"
    img = oci.push_image(name, "v1")
    expect_status(oci.get_manifest(name, "v1"), 200)
    assert oci.get_manifest(name, img.digest).content == img.manifest


@pytest.mark.parametrize("path,method", [
    ("/v2/{repo}/manifests/nope", "GET"),
    ("/v2/{repo}/blobs/" + digest_of(b"none"), "GET"),
    ("/v2/{repo}/blobs/uploads/" + str(uuid.UUID(int=1)), "GET"),
    ("/v2/{repo}/blobs/uploads/" + str(uuid.UUID(int=1)), "PATCH"),
    ("/v2/{repo}/blobs/uploads/" + str(uuid.UUID(int=1)), "DELETE"),
])
def test_error_document_shape(oci, repo, registry, path, method):
    """Error bodies are {"errors":[{"code": <table code>, "message": str}, ...]}."""
    oci.push_image(repo, "v1")
    r = oci.request(method, path.format(repo=repo))
    assert 400 <= r.status_code < 500, describe(r)
    codes = error_codes(r)
    if codes is None:
        assert not registry.strict_errors, f"error body must be JSON: {describe(r)}"
        return
    assert codes and all(c in SPEC_ERROR_CODES for c in codes), describe(r)
    if registry.strict_errors:
        assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
        for e in r.json()["errors"]:
            assert isinstance(e.get("message"), str) and e["message"], describe(r)
