"""The real Docker engine (a private dockerd, vfs, no runtime) pushing to and
pulling from the registry under test.

``docker build``/``run`` need a container runtime, so images are made with
``docker import`` (one layer from a rootfs tar built here) and ``docker load``
(a docker-archive built here, several layers, shared base layers). After a
round trip through the registry the image ID must be unchanged, the digest
docker printed must be the one the registry serves, and ``docker save`` must
give back the very files that went in.
"""

from __future__ import annotations

import json

from tools.containers import docker_push_digest
from tools.images import (DOCKER_MANIFEST, ArchiveImage, docker_save_files, layer_files,
                          layer_tar, sha256_digest, write_docker_archive)
from tools.proc import CommandFailed
from tools.registry_api import get_manifest, manifest_digest, tags_list

import pytest

MiB = 1024 * 1024


def _inspect(dockerd, ref: str) -> dict:
    return json.loads(dockerd.docker("image", "inspect", ref).stdout)[0]


def _assert_absent(dockerd, ref: str) -> None:
    r = dockerd.docker("image", "inspect", ref, check=False)
    assert r.returncode != 0, f"{ref} still present locally after rmi"


def _pull_digest(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("Digest: "):
            return line.split(": ", 1)[1].strip()
    raise AssertionError(f"no Digest line in docker pull output:\n{output}")


def test_import_push_rmi_pull_roundtrip(dockerd, registry_url, registry_host, repo, tmp_path):
    files = layer_files("docker-import", 4 * MiB)
    rootfs = layer_tar(files)
    (tmp_path / "rootfs.tar").write_bytes(rootfs)
    ref = f"{registry_host}/{repo}:v1"

    image_id = dockerd.docker("import", tmp_path / "rootfs.tar", ref).stdout.strip()
    assert image_id.startswith("sha256:")
    # docker keeps an imported tar byte-for-byte as the layer
    assert _inspect(dockerd, ref)["RootFS"]["Layers"] == [sha256_digest(rootfs)]

    pushed = docker_push_digest(dockerd.docker("push", ref).stdout, "v1")

    # what docker says it pushed is what the registry serves, by tag and by digest
    assert manifest_digest(registry_url, repo, "v1") == pushed
    assert manifest_digest(registry_url, repo, pushed) == pushed
    manifest = get_manifest(registry_url, repo, "v1", accept=DOCKER_MANIFEST)
    assert sha256_digest(manifest.content) == pushed
    body = manifest.json()
    assert body["mediaType"] == DOCKER_MANIFEST
    assert body["config"]["digest"] == image_id
    assert len(body["layers"]) == 1

    dockerd.docker("rmi", ref)
    _assert_absent(dockerd, ref)

    out = dockerd.docker("pull", ref).stdout
    assert _pull_digest(out) == pushed
    info = _inspect(dockerd, ref)
    assert info["Id"] == image_id
    assert f"{registry_host}/{repo}@{pushed}" in info["RepoDigests"]

    # the files that come back are the files that went in
    dockerd.docker("save", "-o", tmp_path / "saved.tar", ref)
    _, saved = docker_save_files(tmp_path / "saved.tar")
    assert saved == dict(files)

    # pull by digest as well
    dockerd.docker("rmi", ref)
    by_digest = f"{registry_host}/{repo}@{pushed}"
    dockerd.docker("pull", by_digest)
    assert _inspect(dockerd, by_digest)["Id"] == image_id
    dockerd.docker("rmi", by_digest)


def test_load_multilayer_shared_base_push_pull(dockerd, registry_url, registry_host, repo, tmp_path):
    repo_a, repo_b = f"{repo}/app-a", f"{repo}/app-b"
    a1 = f"{registry_host}/{repo_a}:1"
    a2 = f"{registry_host}/{repo_a}:2"
    b1 = f"{registry_host}/{repo_b}:1"
    images = write_docker_archive(tmp_path / "images.tar", [
        ArchiveImage(a1, ["shared-base", "app-a"], layer_size=MiB),
        ArchiveImage(a2, ["shared-base", "app-a", "app-a-v2"], layer_size=MiB),
        ArchiveImage(b1, ["shared-base", "app-b"], layer_size=MiB),
    ])
    dockerd.docker("load", "-i", tmp_path / "images.tar")
    for img in images:
        info = _inspect(dockerd, img.tag)
        assert info["Id"] == img.image_id
        assert info["RootFS"]["Layers"] == img.diff_ids

    out_a1 = dockerd.docker("push", a1).stdout
    d_a1 = docker_push_digest(out_a1, "1")

    # same repository, two of three layers already there
    out_a2 = dockerd.docker("push", a2).stdout
    d_a2 = docker_push_digest(out_a2, "2")
    assert out_a2.count("Layer already exists") == 2, out_a2

    # other repository: the shared base layer is mounted across repositories,
    # not uploaded again
    out_b1 = dockerd.docker("push", b1).stdout
    d_b1 = docker_push_digest(out_b1, "1")
    assert f"Mounted from {repo_a}" in out_b1, out_b1

    for r, tag, d in ((repo_a, "1", d_a1), (repo_a, "2", d_a2), (repo_b, "1", d_b1)):
        assert manifest_digest(registry_url, r, tag) == d
    m_a1 = get_manifest(registry_url, repo_a, "1", accept=DOCKER_MANIFEST).json()
    m_a2 = get_manifest(registry_url, repo_a, "2", accept=DOCKER_MANIFEST).json()
    m_b1 = get_manifest(registry_url, repo_b, "1", accept=DOCKER_MANIFEST).json()
    assert [len(m["layers"]) for m in (m_a1, m_a2, m_b1)] == [2, 3, 2]
    base = m_a1["layers"][0]["digest"]
    assert m_a2["layers"][0]["digest"] == base and m_b1["layers"][0]["digest"] == base
    assert m_a2["layers"][1] == m_a1["layers"][1]
    assert {m_a1["config"]["digest"], m_a2["config"]["digest"], m_b1["config"]["digest"]} == {
        img.image_id for img in images}

    assert sorted(tags_list(registry_url, repo_a)) == ["1", "2"]
    assert tags_list(registry_url, repo_b) == ["1"]

    dockerd.docker("rmi", a1, a2, b1)
    for img in images:
        _assert_absent(dockerd, img.tag)

    for img, d in ((images[1], d_a2), (images[2], d_b1)):
        out = dockerd.docker("pull", img.tag).stdout
        assert _pull_digest(out) == d
        info = _inspect(dockerd, img.tag)
        assert info["Id"] == img.image_id
        assert info["RootFS"]["Layers"] == img.diff_ids
        saved = tmp_path / f"saved-{img.image_id[7:19]}.tar"
        dockerd.docker("save", "-o", saved, img.tag)
        _, files = docker_save_files(saved)
        assert files == img.files
    dockerd.docker("rmi", a2, b1)


def test_pull_unknown_tag_fails(dockerd, registry_host, repo):
    with pytest.raises(CommandFailed) as e:
        dockerd.docker("pull", f"{registry_host}/{repo}:does-not-exist", timeout=60)
    assert "not found" in (e.value.result.stderr + e.value.result.stdout).lower()
