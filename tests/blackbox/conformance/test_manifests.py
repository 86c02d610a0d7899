"""Manifests: end-3 (GET/HEAD), end-7 (PUT), end-9 (DELETE)."""

from __future__ import annotations

import json

import pytest

from conformance.checks import describe, expect_digest_header, expect_status
from conformance.ociclient import (EMPTY_DESCRIPTOR, EMPTY_JSON, MT_DOCKER_CONFIG, MT_DOCKER_LAYER,
                                   MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_CONFIG, MT_OCI_INDEX,
                                   MT_OCI_LAYER, MT_OCI_MANIFEST, OciClient, canonical_json,
                                   descriptor, digest_of, docker_manifest, docker_manifest_list,
                                   image_config, media_type_of, oci_image_manifest, oci_index,
                                   platform, random_bytes, unique_repo)

KINDS = ["oci-manifest", "oci-index", "docker-manifest", "docker-list"]


def build(oci: OciClient, repo: str, kind: str) -> tuple[bytes, str]:
    """Push whatever ``kind`` references and return (manifest bytes, media type)."""
    if kind in ("oci-manifest", "oci-index"):
        img = oci.push_image(repo, n_layers=2)
        if kind == "oci-manifest":
            return img.manifest, img.media_type
        img2 = oci.push_image(repo)
        return oci_index([descriptor(MT_OCI_MANIFEST, img.manifest, platform=platform("amd64")),
                          descriptor(MT_OCI_MANIFEST, img2.manifest, platform=platform("arm64"))],
                         annotations={"org.example.kind": "index"}), MT_OCI_INDEX
    img = oci.push_image(repo, docker=True, n_layers=2)
    if kind == "docker-manifest":
        return img.manifest, img.media_type
    return docker_manifest_list([descriptor(MT_DOCKER_MANIFEST, img.manifest,
                                            platform=platform("amd64"))]), MT_DOCKER_LIST


def check_manifest_response(r, body: bytes, media_type: str, method: str = "GET"):
    expect_status(r, 200)
    assert media_type_of(r) == media_type, describe(r)
    assert r.headers.get("Content-Length") == str(len(body)), describe(r)
    expect_digest_header(r, equals=digest_of(body))
    if method == "GET":
        assert r.content == body, "registry must return the exact bytes that were pushed"
    else:
        assert r.content == b""


@pytest.mark.parametrize("kind", KINDS)
def test_push_pull_by_tag(oci, repo, kind):
    body, mt = build(oci, repo, kind)
    r = oci.put_manifest(repo, "v1", body, mt)
    expect_status(r, 201)
    expect_digest_header(r, equals=digest_of(body))
    # Location is a pullable manifest URL
    loc = oci.get(oci.location(r), headers={"Accept": mt})
    check_manifest_response(loc, body, mt)

    for ref in ("v1", digest_of(body)):
        check_manifest_response(oci.get_manifest(repo, ref), body, mt)
        check_manifest_response(oci.head_manifest(repo, ref), body, mt, method="HEAD")


@pytest.mark.parametrize("kind", KINDS)
def test_push_pull_by_digest(oci, repo, kind):
    body, mt = build(oci, repo, kind)
    digest = digest_of(body)
    r = oci.put_manifest(repo, digest, body, mt)
    expect_status(r, 201)
    assert r.headers.get("Location"), describe(r)
    expect_digest_header(r, equals=digest)
    check_manifest_response(oci.get_manifest(repo, digest), body, mt)
    check_manifest_response(oci.head_manifest(repo, digest), body, mt, method="HEAD")


def test_exact_bytes_are_preserved(oci, repo):
    """Whitespace, key order and unknown fields are the client's business:
    the registry stores and serves the exact byte stream (and its digest)."""
    oci.push_blob(repo, EMPTY_JSON)
    doc = ('{\n  "schemaVersion": 2,\n  "mediaType": "%s",\n  "config": %s,\n'
           '  "layers": [],\n  "annotations": {"z": "1", "a": "2"},\n'
           '  "x-unknown-field": [1, 2, 3]\n}\n' % (MT_OCI_MANIFEST, json.dumps(EMPTY_DESCRIPTOR)))
    body = doc.encode()
    assert oci.push_manifest(repo, "pretty", body, MT_OCI_MANIFEST) == digest_of(body)
    check_manifest_response(oci.get_manifest(repo, "pretty"), body, MT_OCI_MANIFEST)


def test_deep_repository_name(oci):
    repo = unique_repo("conf", "deep") + "/team/app/api"
    img = oci.push_image(repo, "1.0")
    check_manifest_response(oci.get_manifest(repo, "1.0"), img.manifest, img.media_type)
    tags = oci.tags_list(repo)
    expect_status(tags, 200)
    assert tags.json() == {"name": repo, "tags": ["1.0"]}


def test_retag_moves_tag(oci, repo):
    a = oci.push_image(repo, "latest")
    b = oci.push_image(repo, "latest")
    check_manifest_response(oci.get_manifest(repo, "latest"), b.manifest, b.media_type)
    # the old manifest is still there by digest
    check_manifest_response(oci.get_manifest(repo, a.digest), a.manifest, a.media_type)


def test_same_manifest_many_tags(oci, repo):
    img = oci.push_image(repo, "one")
    for tag in ("two", "three"):
        assert oci.push_manifest(repo, tag, img.manifest, img.media_type) == img.digest
    for tag in ("one", "two", "three"):
        check_manifest_response(oci.get_manifest(repo, tag), img.manifest, img.media_type)


def test_tag_of_max_length(oci, repo):
    img = oci.push_image(repo)
    tag = "A" + "b" * 126 + "9"  # 128 chars, upper case allowed in tags
    assert oci.push_manifest(repo, tag, img.manifest, img.media_type) == img.digest
    check_manifest_response(oci.get_manifest(repo, tag), img.manifest, img.media_type)


def test_tag_charset(oci, repo):
    img = oci.push_image(repo)
    tag = "_Under.score-dash_9"
    oci.push_manifest(repo, tag, img.manifest, img.media_type)
    check_manifest_response(oci.get_manifest(repo, tag), img.manifest, img.media_type)


def test_manifest_of_4_megabytes(oci, repo):
    """Spec: registries SHOULD expect to support manifest pushes of at least 4 MB."""
    oci.push_blob(repo, EMPTY_JSON)
    base = len(oci_image_manifest(dict(EMPTY_DESCRIPTOR), [], annotations={"pad": ""}))
    body = oci_image_manifest(dict(EMPTY_DESCRIPTOR), [],
                              annotations={"pad": "x" * (4_000_000 - base)})
    assert len(body) == 4_000_000
    oci.push_manifest(repo, "big", body, MT_OCI_MANIFEST)
    check_manifest_response(oci.get_manifest(repo, "big"), body, MT_OCI_MANIFEST)


def test_content_type_parameters_ignored_on_push(oci, repo):
    """Spec: the registry SHOULD ignore parameters on the Content-Type header."""
    img = oci.push_image(repo)
    r = oci.put_manifest(repo, "params", img.manifest, img.media_type + "; charset=utf-8")
    expect_status(r, 201)
    check_manifest_response(oci.get_manifest(repo, "params"), img.manifest, img.media_type)


# --------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------


def test_digest_mismatch(oci, repo, expect_error):
    img = oci.push_image(repo)
    other = oci_image_manifest(descriptor(MT_OCI_CONFIG, img.config), [],
                               annotations={"different": "yes"})
    wrong = digest_of(other)
    r = oci.put_manifest(repo, wrong, img.manifest + b" ", MT_OCI_MANIFEST)
    expect_error(r, 400, "DIGEST_INVALID")
    expect_status(oci.get_manifest(repo, wrong), 404)
    expect_status(oci.get_manifest(repo, digest_of(img.manifest + b" ")), 404)


def test_missing_layer(oci, repo, expect_error):
    cfg = image_config()
    oci.push_blob(repo, cfg)
    body = oci_image_manifest(descriptor(MT_OCI_CONFIG, cfg),
                              [descriptor(MT_OCI_LAYER, b"never uploaded" + random_bytes(8))])
    expect_error(oci.put_manifest(repo, "v1", body, MT_OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")
    expect_status(oci.get_manifest(repo, "v1"), 404)


def test_missing_config(oci, repo, expect_error):
    layer = random_bytes(100)
    oci.push_blob(repo, layer)
    body = oci_image_manifest(descriptor(MT_OCI_CONFIG, image_config()),
                              [descriptor(MT_OCI_LAYER, layer)])
    expect_error(oci.put_manifest(repo, "v1", body, MT_OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_docker_manifest_missing_layer(oci, repo, expect_error):
    cfg = image_config()
    oci.push_blob(repo, cfg)
    body = docker_manifest(descriptor(MT_DOCKER_CONFIG, cfg),
                           [descriptor(MT_DOCKER_LAYER, random_bytes(50))])
    expect_error(oci.put_manifest(repo, "v1", body, MT_DOCKER_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_blob_in_other_repository_does_not_count(oci, repo, expect_error):
    """Descriptors are resolved in the manifest's own repository."""
    other = unique_repo("conf", "other")
    cfg, layer = image_config(), random_bytes(64)
    oci.push_blob(other, cfg)
    oci.push_blob(other, layer)
    oci.push_blob(repo, cfg)
    body = oci_image_manifest(descriptor(MT_OCI_CONFIG, cfg), [descriptor(MT_OCI_LAYER, layer)])
    expect_error(oci.put_manifest(repo, "v1", body, MT_OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_missing_child(oci, repo, expect_error):
    img = oci.push_image(repo)
    ghost = oci_image_manifest(descriptor(MT_OCI_CONFIG, image_config()), [])
    body = oci_index([img.descriptor, descriptor(MT_OCI_MANIFEST, ghost)])
    expect_error(oci.put_manifest(repo, "idx", body, MT_OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")


def test_docker_list_missing_child(oci, repo, expect_error):
    ghost = docker_manifest(descriptor(MT_DOCKER_CONFIG, image_config()), [])
    body = docker_manifest_list([descriptor(MT_DOCKER_MANIFEST, ghost, platform=platform())])
    expect_error(oci.put_manifest(repo, "list", body, MT_DOCKER_LIST), 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"a string"'],
                         ids=["truncated", "empty", "array", "string"])
def test_malformed_manifest(oci, repo, expect_error, body):
    oci.push_blob(repo, EMPTY_JSON)
    expect_error(oci.put_manifest(repo, "bad", body, MT_OCI_MANIFEST), 400, "MANIFEST_INVALID")
    expect_status(oci.get_manifest(repo, "bad"), 404)


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 answers 500 UNKNOWN for an OCI manifest with schemaVersion 1; "
    "image-spec: schemaVersion MUST be 2, so it is an invalid manifest (400 "
    "MANIFEST_INVALID), a client error rather than a server error"))
def test_manifest_wrong_schema_version(oci, repo, expect_error):
    oci.push_blob(repo, EMPTY_JSON)
    doc = json.loads(oci_image_manifest(dict(EMPTY_DESCRIPTOR), []))
    doc["schemaVersion"] = 1
    expect_error(oci.put_manifest(repo, "bad", canonical_json(doc), MT_OCI_MANIFEST), 400,
                 "MANIFEST_INVALID")


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8's router does not match references outside the tag "
    "grammar and answers 404 (plain-text 'page not found'). The spec requires "
    "tags to match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} but names no status; the "
    "request is refused as invalid: 400 MANIFEST_INVALID (Berth: the spec's codes "
    "only) or, from another registry, the legacy TAG_INVALID named by the spec"))
@pytest.mark.parametrize("tag", ["-bad", ".bad", "a" * 129, "bad+tag"], ids=["dash", "dot", "129", "plus"])
def test_invalid_tag_rejected(oci, repo, expect_error, tag):
    img = oci.push_image(repo)
    r = oci.put_manifest(repo, tag, img.manifest, img.media_type)
    expect_error(r, 400, ("TAG_INVALID", "MANIFEST_INVALID"))


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 returns 500 UNKNOWN for GET /manifests/sha256:<not hex> "
    "(it treats the string as a tag path); spec: reference MUST be a tag or a digest "
    "and failures of end-3 are 404 (or 400 for a malformed request), never 5xx"))
def test_get_manifest_malformed_reference(oci, repo, expect_error):
    oci.push_image(repo, "v1")
    r = oci.get_manifest(repo, "sha256:baddigest")
    expect_error(r, (400, 404), ("DIGEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_INVALID",
                                 "TAG_INVALID"))


def test_unknown_manifest(oci, repo, expect_error):
    oci.push_image(repo, "exists")
    expect_error(oci.get_manifest(repo, "nope"), 404, "MANIFEST_UNKNOWN")
    expect_error(oci.get_manifest(repo, digest_of(b"nope")), 404, "MANIFEST_UNKNOWN")
    expect_status(oci.head_manifest(repo, "nope"), 404)
    expect_status(oci.head_manifest(repo, digest_of(b"nope")), 404)


def test_manifest_in_unknown_repository(oci, expect_error):
    repo = unique_repo("conf", "nosuchrepo")
    expect_error(oci.get_manifest(repo, "latest"), 404, ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))
    expect_status(oci.head_manifest(repo, "latest"), 404)


def test_manifest_is_scoped_to_its_repository(oci, repo, expect_error):
    img = oci.push_image(repo, "v1")
    other = unique_repo("conf", "other")
    oci.push_image(other, "v1")
    expect_error(oci.get_manifest(other, img.digest), 404, "MANIFEST_UNKNOWN")


# --------------------------------------------------------------------------
# Deletion
# --------------------------------------------------------------------------


def test_delete_manifest_by_digest(oci, repo, expect_error):
    img = oci.push_image(repo, "v1")
    keep = oci.push_image(repo, "v2")
    r = oci.delete_manifest(repo, img.digest)
    expect_status(r, 202)
    expect_error(oci.get_manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN")
    expect_status(oci.head_manifest(repo, img.digest), 404)
    # "... and any tag pointing to that digest will return a 404"
    expect_error(oci.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    tags = oci.tags_list(repo)
    expect_status(tags, 200)
    assert tags.json()["tags"] == ["v2"]
    check_manifest_response(oci.get_manifest(repo, "v2"), keep.manifest, keep.media_type)
    # deleting again: gone
    expect_error(oci.delete_manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_removes_all_its_tags(oci, repo, expect_error):
    img = oci.push_image(repo, "a")
    oci.push_manifest(repo, "b", img.manifest, img.media_type)
    expect_status(oci.delete_manifest(repo, img.digest), 202)
    for tag in ("a", "b"):
        expect_error(oci.get_manifest(repo, tag), 404, "MANIFEST_UNKNOWN")


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 refuses DELETE /manifests/<tag> with 400 DIGEST_INVALID "
    "(the spec allows 400/405 when tag deletion is disabled; Berth implements "
    "tag deletion: 202)"))
def test_delete_tag(oci, repo, expect_error):
    img = oci.push_image(repo, "gone")
    oci.push_manifest(repo, "stays", img.manifest, img.media_type)
    r = oci.delete_manifest(repo, "gone")
    expect_status(r, 202)
    expect_error(oci.get_manifest(repo, "gone"), 404, "MANIFEST_UNKNOWN")
    # only the tag went away
    check_manifest_response(oci.get_manifest(repo, img.digest), img.manifest, img.media_type)
    check_manifest_response(oci.get_manifest(repo, "stays"), img.manifest, img.media_type)
    tags = oci.tags_list(repo)
    expect_status(tags, 200)
    assert tags.json()["tags"] == ["stays"]


def test_delete_unknown_manifest(oci, repo, expect_error):
    oci.push_image(repo, "v1")
    expect_error(oci.delete_manifest(repo, digest_of(b"unknown")), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_unknown_repository(oci, expect_error):
    repo = unique_repo("conf", "nosuchrepo")
    expect_error(oci.delete_manifest(repo, digest_of(b"unknown")), 404,
                 ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))


def test_delete_index_keeps_children(oci, repo):
    body, mt = build(oci, repo, "oci-index")
    oci.push_manifest(repo, "idx", body, mt)
    children = [m["digest"] for m in json.loads(body)["manifests"]]
    expect_status(oci.delete_manifest(repo, digest_of(body)), 202)
    for child in children:
        expect_status(oci.head_manifest(repo, child), 200)


def test_repush_after_delete(oci, repo):
    img = oci.push_image(repo, "v1")
    expect_status(oci.delete_manifest(repo, img.digest), 202)
    assert oci.push_manifest(repo, "v1", img.manifest, img.media_type) == img.digest
    check_manifest_response(oci.get_manifest(repo, "v1"), img.manifest, img.media_type)


def test_reading_a_manifest_under_an_invalid_tag_is_not_found(oci, repo, expect_error):
    """The distribution-spec conformance suite (v1.1.1) reads `.INVALID_MANIFEST_NAME` and
    requires 404: no manifest can be stored under a tag outside the grammar."""
    oci.push_image(repo, "v1")
    expect_error(oci.get_manifest(repo, ".INVALID_MANIFEST_NAME"), 404, "MANIFEST_UNKNOWN")
    expect_status(oci.head_manifest(repo, ".INVALID_MANIFEST_NAME"), 404)
