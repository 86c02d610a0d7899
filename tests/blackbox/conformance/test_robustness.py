"""Concurrency and client disconnects (not spec text, but what the spec's
"Layer Upload De-duplication" and "Resumable Push" use cases rely on)."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from conformance.checks import describe, expect_status, upload_range_end
from conformance.ociclient import (MT_OCI_CONFIG, MT_OCI_LAYER, MT_OCI_MANIFEST, OciClient,
                                   descriptor, digest_of, image_config, oci_image_manifest,
                                   random_bytes)

THREADS = 8


def _run_together(fn, n=THREADS):
    """Run fn(i, client) in n threads released by one barrier; each thread has
    its own HTTP session. Returns the results in order (exceptions re-raised)."""
    barrier = threading.Barrier(n, timeout=30)

    def worker(i, base):
        client = OciClient(base)
        try:
            barrier.wait()
            return fn(i, client)
        finally:
            client.s.close()
    return worker


def test_same_blob_pushed_concurrently(oci, repo):
    data = random_bytes(1024 * 1024)
    digest = digest_of(data)

    def push(i, client):
        if i % 2:
            loc = client.start_upload_session(repo)
            return client.put_upload(loc, digest, data)
        # half of them chunked, so the sessions overlap for longer
        loc = client.start_upload_session(repo)
        for off in range(0, len(data), 256 * 1024):
            r = client.patch_chunk(loc, data[off:off + 256 * 1024], start=off)
            if r.status_code != 202:
                return r
            loc = client.location(r)
        return client.put_upload(loc, digest)

    worker = _run_together(push)
    with ThreadPoolExecutor(THREADS) as ex:
        results = list(ex.map(lambda i: worker(i, oci.base), range(THREADS)))
    for r in results:
        expect_status(r, 201)
        assert r.headers.get("Docker-Content-Digest") == digest, describe(r)

    g = oci.get_blob(repo, digest)
    expect_status(g, 200)
    assert g.content == data
    h = oci.head_blob(repo, digest)
    assert h.headers.get("Content-Length") == str(len(data))


def test_concurrent_manifest_puts_to_one_tag(oci, repo):
    cfg, layer = image_config(), random_bytes(512)
    oci.push_blob(repo, cfg)
    oci.push_blob(repo, layer)
    bodies = [oci_image_manifest(descriptor(MT_OCI_CONFIG, cfg), [descriptor(MT_OCI_LAYER, layer)],
                                 annotations={"writer": str(i)}) for i in range(THREADS)]
    digests = {digest_of(b): b for b in bodies}

    def put(i, client):
        return client.put_manifest(repo, "race", bodies[i], MT_OCI_MANIFEST)

    worker = _run_together(put)
    with ThreadPoolExecutor(THREADS) as ex:
        results = list(ex.map(lambda i: worker(i, oci.base), range(THREADS)))
    for i, r in enumerate(results):
        expect_status(r, 201)
        assert r.headers.get("Docker-Content-Digest") == digest_of(bodies[i])

    g = oci.get_manifest(repo, "race")
    expect_status(g, 200)
    winner = g.headers.get("Docker-Content-Digest")
    assert winner in digests, describe(g)
    assert g.content == digests[winner] and digest_of(g.content) == winner
    h = oci.head_manifest(repo, "race")
    assert h.headers.get("Docker-Content-Digest") == winner
    # every manifest is still there by digest; the tag is listed once
    for d, b in digests.items():
        r = oci.get_manifest(repo, d)
        expect_status(r, 200)
        assert r.content == b
    tags = oci.tags_list(repo)
    expect_status(tags, 200)
    assert tags.json()["tags"] == ["race"]


def test_concurrent_pushes_to_distinct_repositories(oci):
    """Implicit repository creation under concurrency."""
    base = f"conf/par-{random_bytes(4).hex()}"
    images = {}

    def push(i, client):
        img = client.push_image(f"{base}/r{i}", "v1")
        images[i] = img
        return img

    worker = _run_together(push)
    with ThreadPoolExecutor(THREADS) as ex:
        list(ex.map(lambda i: worker(i, oci.base), range(THREADS)))
    for i, img in images.items():
        r = oci.get_manifest(f"{base}/r{i}", "v1")
        expect_status(r, 200)
        assert r.content == img.manifest
    assert len(images) == THREADS


def _send_partial_patch(url: str, declared: int, payload: bytes) -> None:
    """PATCH declaring Content-Length ``declared`` but sending only ``payload``,
    then close the socket (raw socket: no client library will do this)."""
    u = urlsplit(url)
    target = u.path + (f"?{u.query}" if u.query else "")
    head = (f"PATCH {target} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n"
            f"Connection: close\r\n\r\n").encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(head)
        s.sendall(payload)
        time.sleep(0.2)  # let the server read what was sent
        s.shutdown(socket.SHUT_RDWR)


def test_client_disconnect_mid_patch(oci, repo, registry, expect_error):
    declared = 10_000_000
    full = random_bytes(declared)
    sent = 1_000_000
    full_digest = digest_of(full)

    loc = oci.start_upload_session(repo)
    _send_partial_patch(loc, declared, full[:sent])

    # The server is healthy.
    deadline = time.monotonic() + 10
    while True:
        try:
            ping = oci.ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    expect_status(ping, 200)

    # The session either reports a consistent offset or is gone.
    st = oci.upload_status(loc)
    if st.status_code == 404:
        # distribution: BLOB_UPLOAD_INVALID (its signed _state no longer
        # matches the partially written file). Berth: the session is unknown.
        expect_error(st, 404, "BLOB_UPLOAD_UNKNOWN" if registry.is_berth
                     else ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"))
        offset = None
    else:
        expect_status(st, 204)
        end = upload_range_end(st)
        # "0-0" is also how an empty session is reported
        offset = end + 1 if end > 0 else 0
        assert offset <= sent, f"server claims {offset} bytes but only {sent} were sent"

    # Nothing is visible under the digest of the full content.
    expect_status(oci.head_blob(repo, full_digest), 404)
    expect_status(oci.get_blob(repo, full_digest), 404)

    if offset is not None:
        # Resumable push: continue from the reported offset and finish.
        r = oci.patch_chunk(oci.location(st), full[offset:], start=offset)
        expect_status(r, 202)
        r = oci.put_upload(oci.location(r), full_digest)
        expect_status(r, 201)
        g = oci.get_blob(repo, full_digest)
        expect_status(g, 200)
        assert g.content == full

    # And ordinary work goes on.
    img = oci.push_image(repo, "after")
    assert oci.get_manifest(repo, "after").content == img.manifest


def test_client_disconnect_mid_monolithic_put(oci, repo):
    data = random_bytes(2_000_000)
    digest = digest_of(data)
    loc = oci.start_upload_session(repo)
    u = urlsplit(loc)
    query = f"{u.query}&digest={digest}" if u.query else f"digest={digest}"
    head = (f"PUT {u.path}?{query} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(head + data[:500_000])
        time.sleep(0.2)
        s.shutdown(socket.SHUT_RDWR)
    expect_status(oci.ping(), 200)
    expect_status(oci.head_blob(repo, digest), 404)
    # the same content can still be pushed normally
    assert oci.push_blob(repo, data) == digest
    assert oci.get_blob(repo, digest).content == data
