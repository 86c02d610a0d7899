"""Scale-out (issue 11): the nodes of one cluster serve one registry. What one node was told,
every other node knows at once: blobs, manifests, tags, the catalog, deletions, and upload
sessions, which a client may continue on any node. A node killed with -9 costs nothing that
was acknowledged; the others keep serving.

Each test talks to the nodes directly (``ClusterProcess.nodes``), not through the proxy, so it
chooses which node serves which request. Runs only with ``BERTH_TEST_BACKEND=cluster``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from conformance.ociclient import (MT_OCI_CONFIG, MT_OCI_LAYER, MT_OCI_MANIFEST, OciClient, descriptor,
                                   digest_of, image_config, oci_image_manifest, random_bytes)
from conftest import spawn_berth
from tools import cluster, store


@pytest.fixture(autouse=True)
def _cluster_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("scale-out tests start their own cluster")
    if not cluster.is_cluster():
        pytest.skip("scale-out tests need BERTH_TEST_BACKEND=cluster")


@pytest.fixture
def nodes(tmp_path):
    env = {**os.environ, "BERTH_CREATE_ON_PUSH": "true"}
    c = spawn_berth(tmp_path / "data", env=env)
    clients = [OciClient(n.url) for n in c.nodes]
    yield c, clients
    for o in clients:
        o.s.close()
    alive = c.alive()
    c.stop()
    assert alive, c.log_tail()


def on(client: OciClient, location: str) -> str:
    """An upload Location (absolute or not), sent to ``client``'s node."""
    u = urlsplit(location)
    return client.base + u.path + (f"?{u.query}" if u.query else "")


def pick(clients, i: int) -> OciClient:
    return clients[i % len(clients)]


def test_what_one_node_stored_every_node_serves(nodes):
    c, oci = nodes
    repo = "scale/shared"
    cfg, layer = image_config("scale"), random_bytes(200_000)
    pick(oci, 0).push_blob(repo, cfg)
    pick(oci, 1).push_blob(repo, layer)
    body = oci_image_manifest(descriptor(MT_OCI_CONFIG, cfg), [descriptor(MT_OCI_LAYER, layer)])
    pick(oci, 2).push_manifest(repo, "v1", body, MT_OCI_MANIFEST)
    for o in oci:
        r = o.get_manifest(repo, "v1")
        assert r.status_code == 200 and r.content == body, (o.base, r.status_code)
        for blob in (cfg, layer):
            r = o.get_blob(repo, digest_of(blob))
            assert r.status_code == 200 and r.content == blob, (o.base, r.status_code)
        assert o.tags_list(repo).json()["tags"] == ["v1"]
        assert repo in o.catalog().json()["repositories"]
    assert store.of(c.data_dir).exists(store.blob_key(digest_of(layer)))


def test_a_deletion_on_one_node_is_seen_by_all(nodes):
    _, oci = nodes
    repo = "scale/deleted"
    img = pick(oci, 0).push_image(repo, "gone")
    assert all(o.head_manifest(repo, "gone").status_code == 200 for o in oci)
    r = pick(oci, 1).delete_manifest(repo, img.digest)
    assert r.status_code == 202, r.text
    for o in oci:
        assert o.head_manifest(repo, img.digest).status_code == 404, o.base
        assert o.head_manifest(repo, "gone").status_code == 404, o.base


def test_an_upload_session_moves_from_node_to_node(nodes):
    _, oci = nodes
    repo = "scale/upload"
    data = random_bytes(3 * 1024 * 1024 + 5)
    third = len(data) // 3
    loc = pick(oci, 0).start_upload_session(repo)
    r = pick(oci, 1).patch_chunk(on(pick(oci, 1), loc), data[:third], start=0)
    assert r.status_code == 202, (r.status_code, r.text)
    loc = pick(oci, 1).location(r)
    # The session's state as any node sees it.
    for o in oci:
        r = o.upload_status(on(o, loc))
        assert r.status_code == 204 and r.headers.get("Range") == f"0-{third - 1}", (o.base, r.status_code, r.headers)
    r = pick(oci, 2).patch_chunk(on(pick(oci, 2), loc), data[third:2 * third], start=third)
    assert r.status_code == 202, (r.status_code, r.text)
    loc = pick(oci, 2).location(r)
    r = pick(oci, 0).put_upload(on(pick(oci, 0), loc), digest_of(data), data[2 * third:],
                                content_range=f"{2 * third}-{len(data) - 1}")
    assert r.status_code == 201, (r.status_code, r.text)
    for o in oci:
        r = o.get_blob(repo, digest_of(data))
        assert r.status_code == 200 and r.content == data, o.base


def test_a_chunk_out_of_order_is_refused_by_every_node(nodes):
    _, oci = nodes
    repo = "scale/order"
    loc = pick(oci, 0).start_upload_session(repo)
    r = pick(oci, 1).patch_chunk(on(pick(oci, 1), loc), b"a" * 1000, start=0)
    assert r.status_code == 202, r.text
    loc = pick(oci, 1).location(r)
    for o in oci:  # the next chunk must start at 1000, whichever node is asked
        r = o.patch_chunk(on(o, loc), b"b" * 10, start=5000)
        assert r.status_code == 416, (o.base, r.status_code, r.text)


def test_kill9_of_one_node_the_others_serve_everything_acknowledged(tmp_path):
    c = spawn_berth(tmp_path / "data", env={**os.environ, "BERTH_CREATE_ON_PUSH": "true"})
    oci = [OciClient(n.url) for n in c.nodes]
    try:
        if len(oci) < 2:
            pytest.skip("needs two nodes")
        repo = "scale/kill"
        images = [pick(oci, i).push_image(repo, f"t{i}", layer_size=50_000) for i in range(6)]
        c.nodes[0].kill9()
        for o in oci[1:]:
            for i, img in enumerate(images):
                r = o.get_manifest(repo, f"t{i}")
                assert r.status_code == 200 and r.content == img.manifest, (o.base, i, r.status_code)
                for layer in img.layers:
                    assert o.get_blob(repo, digest_of(layer)).content == layer
            o.push_image(repo, "after")
        assert all(n.alive() for n in c.nodes[1:]), c.log_tail()
    finally:
        for o in oci:
            o.s.close()
        c.stop()
