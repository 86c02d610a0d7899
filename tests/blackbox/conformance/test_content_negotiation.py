"""Manifest GET content negotiation (Accept).

Spec (Pulling manifests): the client SHOULD send an Accept header listing the
manifest types it supports; a GET of an existing manifest MUST return it with
200, and Content-Type SHOULD be the type it was pushed with. When the Accept
list excludes the stored type the outcome is left open (serve it anyway, a
conversion, or 404 MANIFEST_UNKNOWN); only its consistency is checked.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from conformance.checks import describe, expect_status
from conformance.ociclient import (MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_INDEX,
                                   MT_OCI_MANIFEST, descriptor, digest_of, docker_manifest_list,
                                   media_type_of, oci_index, platform, verify_digest)


@pytest.fixture
def oci_image(oci, repo):
    return oci.push_image(repo, "v1")


@pytest.fixture
def oci_idx(oci, repo, oci_image):
    body = oci_index([descriptor(MT_OCI_MANIFEST, oci_image.manifest, platform=platform())])
    oci.push_manifest(repo, "idx", body, MT_OCI_INDEX)
    return body


def _ok(r, body, mt):
    expect_status(r, 200)
    assert media_type_of(r) == mt, describe(r)
    assert r.content == body


@pytest.mark.parametrize("accept", [
    MT_OCI_MANIFEST,
    f"{MT_DOCKER_MANIFEST}, {MT_OCI_MANIFEST}",
    f"{MT_DOCKER_MANIFEST};q=0.9, {MT_OCI_MANIFEST};q=0.5",
    f"{MT_DOCKER_LIST}, {MT_OCI_INDEX}, {MT_DOCKER_MANIFEST}, {MT_OCI_MANIFEST}",
], ids=["exact", "list", "q-values", "all-four"])
def test_accept_listing_stored_type(oci, repo, oci_image, accept):
    _ok(oci.get_manifest(repo, "v1", accept=accept), oci_image.manifest, MT_OCI_MANIFEST)
    h = oci.head_manifest(repo, "v1", accept=accept)
    expect_status(h, 200)
    assert media_type_of(h) == MT_OCI_MANIFEST


def test_accept_as_separate_headers(oci, repo, oci_image):
    """Several Accept header lines mean the same as one comma-joined line
    (RFC 9110 5.3); docker sends one line per type."""
    u = urlsplit(oci.url(f"/v2/{repo}/manifests/v1"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=oci.timeout)
    try:
        conn.putrequest("GET", u.path)
        conn.putheader("Accept", MT_DOCKER_MANIFEST)
        conn.putheader("Accept", MT_OCI_MANIFEST)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body[:300])
        assert resp.getheader("Content-Type", "").split(";")[0].strip() == MT_OCI_MANIFEST
        assert body == oci_image.manifest
    finally:
        conn.close()


def test_index_with_accept(oci, repo, oci_idx):
    _ok(oci.get_manifest(repo, "idx", accept=MT_OCI_INDEX), oci_idx, MT_OCI_INDEX)


def test_docker_types_with_accept(oci, repo):
    img = oci.push_image(repo, "d", docker=True)
    _ok(oci.get_manifest(repo, "d", accept=MT_DOCKER_MANIFEST), img.manifest, MT_DOCKER_MANIFEST)
    lst = docker_manifest_list([descriptor(MT_DOCKER_MANIFEST, img.manifest, platform=platform())])
    oci.push_manifest(repo, "l", lst, MT_DOCKER_LIST)
    _ok(oci.get_manifest(repo, "l", accept=f"{MT_DOCKER_LIST}, {MT_DOCKER_MANIFEST}"),
        lst, MT_DOCKER_LIST)


NO_ACCEPT_REASON = (
    "distribution 2.8 answers 404 MANIFEST_UNKNOWN ('OCI manifest found, but accept "
    "header does not support OCI manifests') when Accept is absent or */*; spec: a GET "
    "of an existing manifest MUST return it with 200 (Accept is only a SHOULD for "
    "clients, and */* matches every type per RFC 7231)")


@pytest.mark.deviation("distribution", reason=NO_ACCEPT_REASON)
@pytest.mark.parametrize("accept", [None, "*/*", "application/*"], ids=["absent", "any", "application-any"])
def test_oci_manifest_without_matching_accept(oci, repo, oci_image, accept):
    r = oci.get_manifest(repo, "v1", accept=accept)
    _ok(r, oci_image.manifest, MT_OCI_MANIFEST)
    # by digest too
    _ok(oci.get_manifest(repo, oci_image.digest, accept=accept), oci_image.manifest, MT_OCI_MANIFEST)


@pytest.mark.deviation("distribution", reason=NO_ACCEPT_REASON)
def test_oci_index_without_accept(oci, repo, oci_idx):
    _ok(oci.get_manifest(repo, "idx", accept=None), oci_idx, MT_OCI_INDEX)
    _ok(oci.get_manifest(repo, digest_of(oci_idx), accept=None), oci_idx, MT_OCI_INDEX)


def test_head_without_accept_reports_same_as_get(oci, repo, oci_image, registry):
    """Whatever the registry decides for a request, HEAD and GET agree, and it is a decision
    (never a server error). Berth serves the stored OCI manifest to both."""
    for accept in (None, MT_OCI_MANIFEST):
        g = oci.get_manifest(repo, "v1", accept=accept)
        h = oci.head_manifest(repo, "v1", accept=accept)
        assert g.status_code == h.status_code, (describe(g), describe(h))
        assert g.status_code < 500, describe(g)
        if registry.is_berth:
            assert g.status_code == 200, describe(g)
        if g.status_code == 200:
            assert media_type_of(g) == media_type_of(h)
            assert g.headers.get("Docker-Content-Digest") == h.headers.get("Docker-Content-Digest")
            assert g.headers.get("Content-Length") == h.headers.get("Content-Length")


@pytest.mark.parametrize("accept", [MT_DOCKER_MANIFEST, "application/vnd.example.unknown+json"])
def test_accept_excluding_stored_type(oci, repo, oci_image, accept, expect_error, registry):
    r = oci.get_manifest(repo, "v1", accept=accept)
    if registry.is_berth and accept == MT_DOCKER_MANIFEST:
        # Berth converts nothing: a manifest of a type the client's Accept excludes (one that
        # names manifest types) is not found for it.
        expect_error(r, 404, "MANIFEST_UNKNOWN")
        return
    if registry.is_berth:
        # An Accept that names no manifest type at all says nothing: the manifest is served.
        expect_status(r, 200)
    elif r.status_code == 404:
        expect_error(r, 404, "MANIFEST_UNKNOWN")
        return
    expect_status(r, 200)
    # Served anyway or converted: the response must describe itself correctly.
    doc = json.loads(r.content)
    assert media_type_of(r) == doc.get("mediaType"), describe(r)
    assert verify_digest(r.content, r.headers["Docker-Content-Digest"])
