"""Cross-repository blob mount: end-11."""

from __future__ import annotations

from conformance.checks import describe, expect_digest_header, expect_status
from conformance.ociclient import digest_of, random_bytes, unique_repo


def test_mount_existing_blob(oci, repo):
    source = unique_repo("conf", "mount-src")
    data = random_bytes(4096)
    digest = oci.push_blob(source, data)

    r = oci.mount_blob(repo, digest, source)
    expect_status(r, 201)
    assert r.headers.get("Location"), describe(r)
    expect_digest_header(r, equals=digest)
    pulled = oci.get(oci.location(r))
    assert pulled.status_code == 200 and pulled.content == data, describe(pulled)

    g = oci.get_blob(repo, digest)
    expect_status(g, 200)
    assert g.content == data
    # the source keeps its blob
    expect_status(oci.head_blob(source, digest), 200)


def test_mount_into_deep_repository(oci):
    source = unique_repo("conf", "mount-src")
    target = unique_repo("conf", "deep") + "/team/app/api"
    data = random_bytes(100)
    digest = oci.push_blob(source, data)
    expect_status(oci.mount_blob(target, digest, source), 201)
    assert oci.get_blob(target, digest).content == data


def _complete_session(oci, resp, repo):
    """A 202 mount answer is an ordinary upload session: finish it."""
    assert resp.headers.get("Location"), describe(resp)
    data = random_bytes(300)
    r = oci.put_upload(oci.location(resp), digest_of(data), data)
    expect_status(r, 201)
    g = oci.get_blob(repo, digest_of(data))
    expect_status(g, 200)
    assert g.content == data


def test_mount_missing_blob_starts_upload(oci, repo):
    source = unique_repo("conf", "mount-src")
    oci.push_blob(source, b"source exists")
    missing = digest_of(b"not in source " + random_bytes(8))
    r = oci.mount_blob(repo, missing, source)
    expect_status(r, 202)
    expect_status(oci.head_blob(repo, missing), 404)
    _complete_session(oci, r, repo)


def test_mount_from_unknown_repository_starts_upload(oci, repo):
    data = random_bytes(64)
    digest = digest_of(data)
    r = oci.mount_blob(repo, digest, unique_repo("conf", "no-such-repo"))
    expect_status(r, 202)
    _complete_session(oci, r, repo)


def test_mount_without_from(oci, repo):
    """Spec: the registry MAY treat `from` as optional and MAY mount the blob if
    it can find it; otherwise it starts an upload session (202)."""
    source = unique_repo("conf", "mount-src")
    data = random_bytes(128)
    digest = oci.push_blob(source, data)
    r = oci.mount_blob(repo, digest, None)
    expect_status(r, 201, 202)
    if r.status_code == 201:
        assert oci.get_blob(repo, digest).content == data
    else:
        _complete_session(oci, r, repo)
