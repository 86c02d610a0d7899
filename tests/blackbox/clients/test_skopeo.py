"""skopeo against the registry under test, starting from an OCI image layout
built here byte by byte: a two-platform image index (linux/amd64 and
linux/arm64, each with its own manifest, config and layer, plus a shared base
layer) and a single-platform image.

Everything that goes in must come back identical: the index and manifest
bytes (so their digests), and every blob when the image is copied back out to
a new layout.
"""

from __future__ import annotations

import json

import pytest

from tools.images import (DOCKER_MANIFEST, OCI_INDEX, oci_layout_ref, read_oci_layout_blobs,
                          sha256_digest, write_oci_layout)
from tools.proc import CommandFailed
from tools.registry_api import get_blob, head_manifest, manifest_digest, tags_list

NOTLS = "--tls-verify=false"


def _digestfile(path) -> str:
    d = path.read_text().strip()
    assert d.startswith("sha256:") and len(d) == 71, d
    return d


@pytest.fixture
def layout(tmp_path, request):
    return write_oci_layout(tmp_path / "src", seed=f"skopeo-{request.node.name}")


def _push_multi(skopeo, layout, dest, tmp_path) -> str:
    df = tmp_path / "digest-multi"
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           "--digestfile", df, f"oci:{layout.path}:multi", f"docker://{dest}")
    return _digestfile(df)


def test_copy_all_index_roundtrip(skopeo, layout, registry_url, registry_host, repo, tmp_path):
    index_digest = layout.refs["multi"]
    dest = f"{registry_host}/{repo}:multi"

    assert _push_multi(skopeo, layout, dest, tmp_path) == index_digest
    assert manifest_digest(registry_url, repo, "multi") == index_digest
    assert manifest_digest(registry_url, repo, index_digest) == index_digest

    # the index comes back byte-for-byte
    raw = skopeo("inspect", "--raw", NOTLS, f"docker://{dest}").stdout.encode()
    assert sha256_digest(raw) == index_digest
    assert raw == layout.blobs[index_digest]
    assert json.loads(raw)["mediaType"] == OCI_INDEX

    # so does every platform manifest, and every blob it references
    for plat, mdigest in layout.platform_manifests["multi"].items():
        assert manifest_digest(registry_url, repo, mdigest) == mdigest
        mraw = skopeo("inspect", "--raw", NOTLS, f"docker://{registry_host}/{repo}@{mdigest}").stdout
        assert mraw.encode() == layout.blobs[mdigest], plat
        m = json.loads(mraw)
        for desc in [m["config"], *m["layers"]]:
            r = get_blob(registry_url, repo, desc["digest"])
            assert r.status_code == 200, (plat, desc)
            assert r.content == layout.blobs[desc["digest"]], (plat, desc["digest"])

    # platform selection out of the index
    arm = json.loads(skopeo("inspect", NOTLS, "--override-arch", "arm64", "--override-variant", "v8",
                            f"docker://{dest}").stdout)
    assert arm["Architecture"] == "arm64"
    amd = json.loads(skopeo("inspect", NOTLS, "--override-arch", "amd64",
                            f"docker://{dest}").stdout)
    assert amd["Architecture"] == "amd64"

    # copy everything back out to a fresh layout: the same blobs, bit for bit
    dst = tmp_path / "dst"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{dest}", f"oci:{dst}:back")
    assert oci_layout_ref(dst, "back") == index_digest
    back = read_oci_layout_blobs(dst)
    assert set(back) == set(layout.blobs)
    for digest, data in layout.blobs.items():
        assert back[digest] == data, digest

    # registry to registry (another repository), digests preserved
    other = f"{registry_host}/{repo}-copy:multi"
    df = tmp_path / "digest-copy"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           "--dest-tls-verify=false", "--digestfile", df, f"docker://{dest}", f"docker://{other}")
    assert _digestfile(df) == index_digest
    assert manifest_digest(registry_url, f"{repo}-copy", "multi") == index_digest


def test_list_tags(skopeo, layout, registry_url, registry_host, repo, tmp_path):
    tags = ["1.0", "1.0.1", "latest", "multi-arch", "v2_rc-1"]
    for tag in tags:
        src = f"oci:{layout.path}:multi" if tag == "multi-arch" else f"oci:{layout.path}:single"
        skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
               src, f"docker://{registry_host}/{repo}:{tag}")
    listed = json.loads(skopeo("list-tags", NOTLS, f"docker://{registry_host}/{repo}").stdout)
    assert sorted(listed["Tags"]) == sorted(tags)
    assert sorted(tags_list(registry_url, repo)) == sorted(tags)
    for tag in tags:
        want = layout.refs["multi" if tag == "multi-arch" else "single"]
        assert manifest_digest(registry_url, repo, tag) == want


def test_delete_by_digest(skopeo, layout, registry_url, registry_host, repo, tmp_path):
    index_digest = layout.refs["multi"]
    dest = f"{registry_host}/{repo}:multi"
    assert _push_multi(skopeo, layout, dest, tmp_path) == index_digest
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout.path}:single", f"docker://{registry_host}/{repo}:keep")

    skopeo("delete", NOTLS, f"docker://{registry_host}/{repo}@{index_digest}")

    with pytest.raises(CommandFailed):
        skopeo("inspect", "--raw", NOTLS, f"docker://{registry_host}/{repo}@{index_digest}",
               timeout=60)
    assert head_manifest(registry_url, repo, index_digest).status_code == 404
    # the tag that pointed at it no longer resolves either
    with pytest.raises(CommandFailed):
        skopeo("inspect", "--raw", NOTLS, f"docker://{dest}", timeout=60)
    assert head_manifest(registry_url, repo, "multi").status_code == 404
    # other content of the repository is untouched
    assert manifest_digest(registry_url, repo, "keep") == layout.refs["single"]
    listed = json.loads(skopeo("list-tags", NOTLS, f"docker://{registry_host}/{repo}").stdout)
    assert listed["Tags"] == ["keep"]


def test_copy_single_platform_as_docker_v2s2(skopeo, layout, registry_url, registry_host, repo,
                                             tmp_path):
    dest = f"{registry_host}/{repo}:v2s2"
    df = tmp_path / "digest"
    skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", "--digestfile", df,
           f"oci:{layout.path}:single", f"docker://{dest}")
    pushed = _digestfile(df)

    raw = skopeo("inspect", "--raw", NOTLS, f"docker://{dest}").stdout.encode()
    assert sha256_digest(raw) == pushed
    m = json.loads(raw)
    assert m["schemaVersion"] == 2 and m["mediaType"] == DOCKER_MANIFEST
    assert manifest_digest(registry_url, repo, "v2s2", accept=DOCKER_MANIFEST) == pushed
    assert manifest_digest(registry_url, repo, pushed) == pushed

    # the layers are the OCI layout's gzip layers, unchanged
    oci_manifest = json.loads(layout.blobs[layout.refs["single"]])
    assert [ly["digest"] for ly in m["layers"]] == [ly["digest"] for ly in oci_manifest["layers"]]
    for ly in m["layers"]:
        assert ly["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        r = get_blob(registry_url, repo, ly["digest"])
        assert r.status_code == 200 and r.content == layout.blobs[ly["digest"]]
    cfg = get_blob(registry_url, repo, m["config"]["digest"])
    assert cfg.status_code == 200 and sha256_digest(cfg.content) == m["config"]["digest"]
    assert json.loads(cfg.content)["architecture"] == "amd64"

    # and it reads back as the same image
    dst = tmp_path / "dst"
    skopeo("copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{dst}:back")
    back = read_oci_layout_blobs(dst)
    for ly in oci_manifest["layers"]:
        assert back[ly["digest"]] == layout.blobs[ly["digest"]]
