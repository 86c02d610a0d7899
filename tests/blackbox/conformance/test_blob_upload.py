"""Blob uploads: end-4a, end-4b, end-5, end-6, end-13 and upload cancellation.

Spec: "Pushing blobs" (monolithic POST+PUT, single POST, chunked PATCH, closing
PUT, upload status GET) of distribution-spec v1.1.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from conformance.checks import describe, expect_digest_header, expect_status, upload_range_end
from conformance.ociclient import add_query, digest_of, random_bytes, verify_digest


def assert_blob(oci, repo, digest, data):
    r = oci.get_blob(repo, digest)
    assert r.status_code == 200, describe(r)
    assert r.content == data
    expect_digest_header(r, body=data)


# --------------------------------------------------------------------------
# Monolithic
# --------------------------------------------------------------------------


def test_post_then_put_monolithic(oci, repo):
    data = random_bytes(4096)
    digest = digest_of(data)
    r = oci.start_upload(repo)
    expect_status(r, 202)
    assert r.headers.get("Location"), describe(r)
    loc = oci.location(r)

    r = oci.put_upload(loc, digest, data)
    expect_status(r, 201)
    expect_digest_header(r, equals=digest)
    # Location is a pullable blob URL.
    blob_url = oci.location(r)
    got = oci.get(blob_url)
    assert got.status_code == 200 and got.content == data, describe(got)
    assert_blob(oci, repo, digest, data)


def test_upload_sessions_are_unique(oci, repo):
    a = oci.location(oci.start_upload(repo))
    b = oci.location(oci.start_upload(repo))
    assert a != b


def test_upload_session_legacy_headers(oci, repo, registry):
    r = oci.start_upload(repo)
    expect_status(r, 202)
    assert r.headers.get("Location")
    if registry.flavor in ("berth", "distribution"):
        # Docker-Upload-UUID is a legacy docker header (not in the OCI spec);
        # Berth sends it like distribution does.
        assert r.headers.get("Docker-Upload-UUID"), describe(r)


def test_single_post_monolithic(oci, repo, registry):
    data = random_bytes(2048)
    digest = digest_of(data)
    r = oci.push_blob_single_post(repo, data)
    if r.status_code == 202 and not registry.is_berth:
        # Spec: registries that do not support single-POST uploads SHOULD answer
        # 202 + Location, and the client proceeds with POST-then-PUT.
        # (distribution 2.8 does this.) Berth supports single POST: must be 201.
        r = oci.put_upload(oci.location(r), digest, data)
    expect_status(r, 201)
    assert r.headers.get("Location"), describe(r)
    expect_digest_header(r, equals=digest)
    assert_blob(oci, repo, digest, data)


def test_single_post_wrong_digest_rejected(oci, repo, registry, expect_error):
    data = random_bytes(100)
    wrong = digest_of(b"something else " + data)
    r = oci.post(add_query(f"/v2/{repo}/blobs/uploads/", digest=wrong), data=data,
                 headers={"Content-Type": "application/octet-stream"})
    if r.status_code == 202 and not registry.is_berth:
        pass  # single POST unsupported: the body was not taken as a blob
    else:
        expect_error(r, 400, "DIGEST_INVALID")
    expect_status(oci.head_blob(repo, wrong), 404)


def test_location_query_is_preserved(oci, repo):
    """Whatever the registry puts in the upload Location's query must survive;
    the client appends ?digest= with '&' when a query is already present."""
    data = random_bytes(64)
    loc = oci.location(oci.start_upload(repo))
    final = add_query(loc, digest=digest_of(data))
    if "?" in loc:
        assert final.startswith(loc + "&")
    r = oci.put_upload(loc, digest_of(data), data)
    expect_status(r, 201)


# --------------------------------------------------------------------------
# Chunked
# --------------------------------------------------------------------------


def test_chunked_upload(oci, repo):
    data = random_bytes(3 * 1000 + 17)
    digest = digest_of(data)
    loc = oci.start_upload_session(repo)
    for off in range(0, len(data), 1000):
        chunk = data[off:off + 1000]
        r = oci.patch_chunk(loc, chunk, start=off)
        expect_status(r, 202)
        assert r.headers.get("Location"), describe(r)
        assert upload_range_end(r) == off + len(chunk) - 1
        loc = oci.location(r)

    st = oci.upload_status(loc)
    expect_status(st, 204)
    assert st.headers.get("Location"), describe(st)
    assert upload_range_end(st) == len(data) - 1
    loc = oci.location(st)

    r = oci.put_upload(loc, digest)
    expect_status(r, 201)
    assert r.headers.get("Location"), describe(r)
    expect_digest_header(r, equals=digest)
    assert_blob(oci, repo, digest, data)


def test_chunked_upload_final_chunk_in_put(oci, repo):
    data = random_bytes(5000)
    digest = digest_of(data)
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data[:3000], start=0)
    expect_status(r, 202)
    loc = oci.location(r)
    r = oci.put_upload(loc, digest, data[3000:], content_range=f"3000-{len(data) - 1}")
    expect_status(r, 201)
    expect_digest_header(r, equals=digest)
    assert_blob(oci, repo, digest, data)


def test_upload_whole_blob_in_single_patch(oci, repo):
    data = random_bytes(1234)
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data, start=0)
    expect_status(r, 202)
    assert upload_range_end(r) == len(data) - 1
    r = oci.put_upload(oci.location(r), digest_of(data))
    expect_status(r, 201)
    assert_blob(oci, repo, digest_of(data), data)


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 ignores Content-Range on PATCH and appends out-of-order "
    "chunks; spec: 'If a chunk is uploaded out of order, the registry MUST respond "
    "with a 416'"))
def test_out_of_order_chunk_is_416(oci, repo):
    data = random_bytes(3000)
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data[:1000], start=0)
    expect_status(r, 202)
    loc = oci.location(r)

    # Skip bytes 1000..1999: the registry must refuse (a RANGE_INVALID-style
    # body is optional; only the status is specified).
    r = oci.patch_chunk(loc, data[2000:], start=2000)
    expect_status(r, 416)

    # The session survives; its status still reports the last good offset.
    st = oci.upload_status(loc)
    expect_status(st, 204)
    assert upload_range_end(st) == 999
    loc = oci.location(st)
    r = oci.patch_chunk(loc, data[1000:], start=1000)
    expect_status(r, 202)
    r = oci.put_upload(oci.location(r), digest_of(data))
    expect_status(r, 201)
    assert_blob(oci, repo, digest_of(data), data)


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 ignores Content-Range on PATCH; spec: 'The first chunk's "
    "range MUST begin with 0' / out-of-order chunk MUST be 416"))
def test_first_chunk_not_at_zero_is_416(oci, repo):
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, b"x" * 10, start=5)
    expect_status(r, 416)


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 ignores Content-Range on PATCH; spec: chunks MUST be "
    "uploaded in order, else 416"))
def test_overlapping_chunk_is_416(oci, repo):
    data = random_bytes(200)
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data[:100], start=0)
    expect_status(r, 202)
    r = oci.patch_chunk(oci.location(r), data[50:], start=50)
    expect_status(r, 416)


def test_streamed_patch_without_content_range(oci, repo):
    """PATCH with chunked transfer encoding: no Content-Range, no Content-Length."""
    parts = [random_bytes(700) for _ in range(5)]
    data = b"".join(parts)
    loc = oci.start_upload_session(repo)
    r = oci.patch_stream(loc, parts[:3])
    expect_status(r, 202)
    assert upload_range_end(r) == 3 * 700 - 1
    loc = oci.location(r)
    r = oci.patch_stream(loc, parts[3:])
    expect_status(r, 202)
    assert upload_range_end(r) == len(data) - 1
    r = oci.put_upload(oci.location(r), digest_of(data))
    expect_status(r, 201)
    assert_blob(oci, repo, digest_of(data), data)


def test_upload_status_of_fresh_session(oci, repo):
    loc = oci.start_upload_session(repo)
    st = oci.upload_status(loc)
    expect_status(st, 204)
    assert st.headers.get("Location"), describe(st)
    # With nothing uploaded the end offset is not well defined by the spec
    # ("0-0" in distribution); only the header's presence is required.
    assert "Range" in st.headers, describe(st)


def test_upload_status_unknown_session(oci, repo, registry, expect_error):
    oci.push_blob(repo, b"make the repository exist")
    r = oci.upload_status(f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}")
    # distribution answers BLOB_UPLOAD_INVALID for a session URL without its
    # signed _state; the spec does not pin the code, both are in its table.
    # Berth knows its sessions: an unknown one is BLOB_UPLOAD_UNKNOWN.
    codes = "BLOB_UPLOAD_UNKNOWN" if registry.is_berth else ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID")
    expect_error(r, 404, codes)


def test_cancel_upload(oci, repo, expect_error):
    data = random_bytes(500)
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data, start=0)
    expect_status(r, 202)
    loc = oci.location(r)

    r = oci.cancel_upload(loc)
    expect_status(r, 204)

    expect_error(oci.upload_status(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(oci.patch_chunk(loc, b"more", start=len(data)), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(oci.put_upload(loc, digest_of(data)), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_status(oci.head_blob(repo, digest_of(data)), 404)


# --------------------------------------------------------------------------
# Digest validation
# --------------------------------------------------------------------------


def test_put_with_wrong_digest(oci, repo, expect_error):
    data = random_bytes(300)
    wrong = digest_of(b"not the content")
    loc = oci.start_upload_session(repo)
    r = oci.put_upload(loc, wrong, data)
    expect_error(r, 400, "DIGEST_INVALID")
    expect_error(oci.get_blob(repo, wrong), 404, "BLOB_UNKNOWN")
    expect_status(oci.head_blob(repo, wrong), 404)


def test_chunked_put_with_wrong_digest(oci, repo, expect_error):
    data = random_bytes(300)
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data, start=0)
    expect_status(r, 202)
    wrong = digest_of(data + b"!")
    r = oci.put_upload(oci.location(r), wrong)
    expect_error(r, 400, "DIGEST_INVALID")
    expect_status(oci.head_blob(repo, wrong), 404)


@pytest.mark.parametrize("bad", ["sha256:zz", "notadigest", "sha256:" + "0" * 63,
                                 "sha256:" + "A" * 64])
def test_put_with_malformed_digest(oci, repo, expect_error, bad):
    loc = oci.start_upload_session(repo)
    r = oci.put_upload(loc, bad, b"abc")
    expect_error(r, 400, "DIGEST_INVALID")


def test_put_with_unsupported_digest_algorithm(oci, repo, expect_error):
    loc = oci.start_upload_session(repo)
    r = oci.put_upload(loc, "md5:" + hashlib.md5(b"abc").hexdigest(), b"abc")
    expect_error(r, 400, ("DIGEST_INVALID", "UNSUPPORTED"))


def test_put_without_digest(oci, repo, expect_error):
    loc = oci.start_upload_session(repo)
    r = oci.put(loc, data=b"abc", headers={"Content-Type": "application/octet-stream"})
    # The closing PUT MUST carry ?digest=; the spec's endpoint table gives 400
    # for end-6 but no code. DIGEST_INVALID (distribution) or BLOB_UPLOAD_INVALID.
    expect_error(r, 400, ("DIGEST_INVALID", "BLOB_UPLOAD_INVALID"))


# --------------------------------------------------------------------------
# Special blobs
# --------------------------------------------------------------------------


def test_sha512_blob(oci, repo):
    data = random_bytes(1500)
    digest = digest_of(data, "sha512")
    r = oci.put_upload(oci.start_upload_session(repo), digest, data)
    expect_status(r, 201)
    # The Docker-Content-Digest MAY be the registry's canonical digest (another
    # algorithm), but it must match the content.
    expect_digest_header(r)
    assert verify_digest(data, r.headers["Docker-Content-Digest"])

    h = oci.head_blob(repo, digest)
    expect_status(h, 200)
    assert int(h.headers["Content-Length"]) == len(data)
    g = oci.get_blob(repo, digest)
    expect_status(g, 200)
    assert g.content == data
    expect_digest_header(g, body=data)


def test_sha512_chunked_blob(oci, repo):
    data = random_bytes(2500)
    digest = digest_of(data, "sha512")
    loc = oci.start_upload_session(repo)
    r = oci.patch_chunk(loc, data[:1000], start=0)
    expect_status(r, 202)
    r = oci.patch_chunk(oci.location(r), data[1000:], start=1000)
    expect_status(r, 202)
    r = oci.put_upload(oci.location(r), digest)
    expect_status(r, 201)
    g = oci.get_blob(repo, digest)
    expect_status(g, 200)
    assert g.content == data


def test_zero_length_blob(oci, repo):
    digest = oci.push_blob(repo, b"")
    assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    h = oci.head_blob(repo, digest)
    expect_status(h, 200)
    assert h.headers.get("Content-Length") == "0"
    expect_digest_header(h, equals=digest)
    g = oci.get_blob(repo, digest)
    expect_status(g, 200)
    assert g.content == b""


def test_push_same_blob_twice(oci, repo):
    data = random_bytes(256)
    assert oci.push_blob(repo, data) == oci.push_blob(repo, data)
    assert_blob(oci, repo, digest_of(data), data)


def test_large_blob_chunked(oci, repo):
    data = random_bytes(5 * 1024 * 1024 + 3)
    digest = oci.push_blob_chunked(repo, data, chunk_size=1024 * 1024)
    g = oci.get_blob(repo, digest)
    expect_status(g, 200)
    assert g.content == data
    assert int(g.headers["Content-Length"]) == len(data)
