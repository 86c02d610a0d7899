"""Referrers API (distribution-spec v1.1): end-12a, end-12b, OCI-Subject.

Every test here is marked spec_1_1: distribution 2.8 predates the API, so on
that target they are expected to fail (strict xfail).
"""

from __future__ import annotations

import json

import pytest

from conformance.checks import describe, expect_status
from conformance.ociclient import (EMPTY_DESCRIPTOR, EMPTY_JSON, MT_OCI_INDEX, MT_OCI_MANIFEST,
                                   descriptor, digest_of, image_config, media_type_of,
                                   oci_image_manifest, oci_index, unique_repo)

pytestmark = pytest.mark.spec_1_1

SBOM = "application/vnd.example.sbom.v1+json"
SIG = "application/vnd.example.signature.v1"


def referrers_index(oci, repo, digest, artifact_type=None):
    r = oci.referrers(repo, digest, artifact_type)
    expect_status(r, 200)
    assert media_type_of(r) == MT_OCI_INDEX, describe(r)
    doc = r.json()
    assert doc.get("schemaVersion") == 2, doc
    assert doc.get("mediaType") == MT_OCI_INDEX, doc
    assert isinstance(doc.get("manifests"), list), doc
    return r, doc["manifests"]


def by_digest(descs):
    out = {d["digest"]: d for d in descs}
    assert len(out) == len(descs), f"duplicate descriptors: {descs}"
    return out


def test_push_referrer_returns_oci_subject(oci, repo):
    subject = oci.push_image(repo, "v1")
    body, digest, r = oci.push_artifact(repo, subject.descriptor, SBOM, {"k": "v"})
    expect_status(r, 201)
    assert r.headers.get("OCI-Subject") == subject.digest, describe(r)
    assert r.headers.get("Docker-Content-Digest") == digest


def test_list_referrers(oci, repo):
    subject = oci.push_image(repo, "v1")
    ann = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.sbom": "json"}
    body, digest, r = oci.push_artifact(repo, subject.descriptor, SBOM, ann)
    expect_status(r, 201)

    _, descs = referrers_index(oci, repo, subject.digest)
    assert len(descs) == 1, descs
    d = descs[0]
    assert d["mediaType"] == MT_OCI_MANIFEST
    assert d["digest"] == digest
    assert d["size"] == len(body)
    assert d["artifactType"] == SBOM
    assert d["annotations"] == ann


def test_referrers_artifact_type_filter(oci, repo):
    subject = oci.push_image(repo, "v1")
    _, sbom1, r1 = oci.push_artifact(repo, subject.descriptor, SBOM, {"n": "1"})
    _, sbom2, r2 = oci.push_artifact(repo, subject.descriptor, SBOM, {"n": "2"})
    _, sig, r3 = oci.push_artifact(repo, subject.descriptor, SIG, {"n": "3"})
    for r in (r1, r2, r3):
        expect_status(r, 201)

    _, everything = referrers_index(oci, repo, subject.digest)
    assert set(by_digest(everything)) == {sbom1, sbom2, sig}

    r, only_sbom = referrers_index(oci, repo, subject.digest, SBOM)
    assert set(by_digest(only_sbom)) == {sbom1, sbom2}
    assert all(d["artifactType"] == SBOM for d in only_sbom)
    applied = [f.strip() for f in r.headers.get("OCI-Filters-Applied", "").split(",")]
    assert "artifactType" in applied, describe(r)

    r, only_sig = referrers_index(oci, repo, subject.digest, SIG)
    assert [d["digest"] for d in only_sig] == [sig]

    r, none = referrers_index(oci, repo, subject.digest, "application/vnd.example.nothing")
    assert none == []


def test_referrers_empty(oci, repo):
    subject = oci.push_image(repo, "v1")
    r, descs = referrers_index(oci, repo, subject.digest)
    assert descs == []
    assert "Link" not in r.headers


def test_referrers_of_unknown_digest(oci, repo):
    """The registry MUST NOT 404 a referrers query on an existing repository."""
    oci.push_image(repo, "v1")
    _, descs = referrers_index(oci, repo, digest_of(b"nothing refers to this"))
    assert descs == []


def test_referrer_pushed_before_subject(oci, repo):
    """Spec: a manifest whose subject does not exist MUST be accepted."""
    cfg = image_config()
    oci.push_blob(repo, cfg)
    subject_body = oci_image_manifest(descriptor("application/vnd.oci.image.config.v1+json", cfg), [])
    subject_desc = descriptor(MT_OCI_MANIFEST, subject_body)

    _, art, r = oci.push_artifact(repo, subject_desc, SIG, {"early": "yes"})
    expect_status(r, 201)
    assert r.headers.get("OCI-Subject") == subject_desc["digest"], describe(r)
    _, descs = referrers_index(oci, repo, subject_desc["digest"])
    assert [d["digest"] for d in descs] == [art]

    oci.push_manifest(repo, "late", subject_body, MT_OCI_MANIFEST)
    _, descs = referrers_index(oci, repo, subject_desc["digest"])
    assert [d["digest"] for d in descs] == [art]


def test_artifact_type_defaults_to_config_media_type(oci, repo):
    """No artifactType in the manifest: the descriptor's artifactType is the
    config descriptor's mediaType."""
    subject = oci.push_image(repo, "v1")
    oci.push_blob(repo, EMPTY_JSON)
    cfg_type = "application/vnd.example.config.v1+json"
    body = oci_image_manifest({"mediaType": cfg_type, "digest": EMPTY_DESCRIPTOR["digest"], "size": 2},
                              [dict(EMPTY_DESCRIPTOR)], subject=subject.descriptor,
                              annotations={"a": "b"})
    oci.push_manifest(repo, digest_of(body), body, MT_OCI_MANIFEST)
    _, descs = referrers_index(oci, repo, subject.digest)
    assert len(descs) == 1 and descs[0]["artifactType"] == cfg_type, descs
    _, filtered = referrers_index(oci, repo, subject.digest, cfg_type)
    assert [d["digest"] for d in filtered] == [digest_of(body)]


def test_index_as_referrer(oci, repo):
    subject = oci.push_image(repo, "v1")
    child = oci.push_image(repo)
    with_type = oci_index([child.descriptor], subject=subject.descriptor,
                          artifact_type="application/vnd.example.bundle", annotations={"i": "1"})
    without_type = oci_index([child.descriptor], subject=subject.descriptor, annotations={"i": "2"})
    for body in (with_type, without_type):
        r = oci.put_manifest(repo, digest_of(body), body, MT_OCI_INDEX)
        expect_status(r, 201)
        assert r.headers.get("OCI-Subject") == subject.digest, describe(r)

    _, descs = referrers_index(oci, repo, subject.digest)
    got = by_digest(descs)
    assert set(got) == {digest_of(with_type), digest_of(without_type)}
    a, b = got[digest_of(with_type)], got[digest_of(without_type)]
    assert a["mediaType"] == MT_OCI_INDEX and a["artifactType"] == "application/vnd.example.bundle"
    assert a["annotations"] == {"i": "1"} and a["size"] == len(with_type)
    # "If the artifactType is empty or missing in an index, the artifactType MUST be omitted."
    assert "artifactType" not in b, b
    assert b["annotations"] == {"i": "2"}


def test_referrer_tagged_and_by_digest(oci, repo):
    """Pushing the referrer by tag makes it a referrer all the same."""
    subject = oci.push_image(repo, "v1")
    _, art, r = oci.push_artifact(repo, subject.descriptor, SBOM, ref="sbom")
    expect_status(r, 201)
    _, descs = referrers_index(oci, repo, subject.digest)
    assert [d["digest"] for d in descs] == [art]


def test_deleted_referrer_disappears(oci, repo):
    subject = oci.push_image(repo, "v1")
    _, keep, _ = oci.push_artifact(repo, subject.descriptor, SBOM, {"keep": "1"})
    _, gone, _ = oci.push_artifact(repo, subject.descriptor, SBOM, {"keep": "0"})
    expect_status(oci.delete_manifest(repo, gone), 202)
    _, descs = referrers_index(oci, repo, subject.digest)
    assert [d["digest"] for d in descs] == [keep]


def test_referrers_are_scoped_to_repository(oci, repo):
    subject = oci.push_image(repo, "v1")
    other = unique_repo("conf", "other")
    oci.push_image(other, "x")
    _, art, r = oci.push_artifact(other, subject.descriptor, SBOM)
    expect_status(r, 201)
    _, descs = referrers_index(oci, repo, subject.digest)
    assert descs == []
    _, descs = referrers_index(oci, other, subject.digest)
    assert [d["digest"] for d in descs] == [art]


def test_referrers_invalid_digest(oci, repo, expect_error):
    """'If the request is invalid, such as a <digest> with an invalid syntax,
    a 400 Bad Request MUST be returned.'"""
    oci.push_image(repo, "v1")
    for bad in ("sha256:zz", "notadigest"):
        r = oci.referrers(repo, bad)
        expect_error(r, 400, "DIGEST_INVALID")


def test_referrers_response_is_valid_index_json(oci, repo):
    subject = oci.push_image(repo, "v1")
    oci.push_artifact(repo, subject.descriptor, SBOM)
    r, _ = referrers_index(oci, repo, subject.digest)
    doc = json.loads(r.content)
    for d in doc["manifests"]:
        assert set(d) >= {"mediaType", "digest", "size"}, d
        assert isinstance(d["size"], int)
