"""One client pushes, the others pull: the registry must hand every client the
same bytes under the same digest. Also tag moves and idempotent re-pushes."""

from __future__ import annotations

import json

from tools.containers import docker_push_digest
from tools.images import (ArchiveImage, docker_save_files, layer_files, layer_tar,
                          read_oci_layout_blobs, sha256_digest, tar_regular_files,
                          write_docker_archive)
from tools.registry_api import get_manifest, manifest_digest, tags_list

MiB = 1024 * 1024
NOTLS = "--tls-verify=false"


def test_docker_push_then_podman_and_skopeo_pull(dockerd, podman, skopeo, registry_url,
                                                  registry_host, repo, tmp_path):
    ref = f"{registry_host}/{repo}:from-docker"
    [img] = write_docker_archive(tmp_path / "img.tar", [
        ArchiveImage(ref, ["interop-base", "interop-top"], layer_size=2 * MiB)])
    dockerd.docker("load", "-i", tmp_path / "img.tar")
    pushed = docker_push_digest(dockerd.docker("push", ref).stdout, "from-docker")
    assert manifest_digest(registry_url, repo, "from-docker") == pushed

    raw = skopeo("inspect", "--raw", NOTLS, f"docker://{ref}").stdout.encode()
    assert sha256_digest(raw) == pushed

    podman("pull", NOTLS, ref)
    assert podman.image_id(ref) == img.image_id.split(":", 1)[1]
    assert podman("image", "inspect", "--format", "{{.Digest}}", ref).stdout.strip() == pushed
    podman("rmi", ref)

    dst = tmp_path / "oci"
    skopeo("copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{ref}",
           f"oci:{dst}:x")
    blobs = read_oci_layout_blobs(dst)
    assert blobs[pushed] == raw
    manifest = json.loads(raw)
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        files.update(tar_regular_files(blobs[layer["digest"]]))
    assert files == img.files
    dockerd.docker("rmi", ref)


def test_podman_push_then_docker_pull(dockerd, podman, registry_url, registry_host, repo,
                                      tmp_path):
    files = layer_files("interop-podman", 3 * MiB)
    (tmp_path / "rootfs.tar").write_bytes(layer_tar(files))
    ref = f"{registry_host}/{repo}:from-podman"
    podman("import", tmp_path / "rootfs.tar", ref)
    image_id = podman.image_id(ref)
    for fmt, tag in (("v2s2", "from-podman"), ("oci", "from-podman-oci")):
        podman("push", NOTLS, "--format", fmt, "--digestfile", tmp_path / f"d-{fmt}", ref,
               f"docker://{registry_host}/{repo}:{tag}")
    podman("rmi", ref)

    for fmt, tag in (("v2s2", "from-podman"), ("oci", "from-podman-oci")):
        pushed = (tmp_path / f"d-{fmt}").read_text().strip()
        pull_ref = f"{registry_host}/{repo}:{tag}"
        out = dockerd.docker("pull", pull_ref).stdout
        assert f"Digest: {pushed}" in out, out
        cfg = get_manifest(registry_url, repo, tag).json()["config"]["digest"]
        info = json.loads(dockerd.docker("image", "inspect", pull_ref).stdout)[0]
        assert info["Id"] == cfg
        if fmt == "v2s2":
            assert info["Id"] == f"sha256:{image_id}"
        dockerd.docker("save", "-o", tmp_path / f"saved-{fmt}.tar", pull_ref)
        _, saved = docker_save_files(tmp_path / f"saved-{fmt}.tar")
        assert saved == dict(files)
        dockerd.docker("rmi", pull_ref)


def test_tag_moves_and_repush_is_idempotent(dockerd, registry_url, registry_host, repo, tmp_path):
    latest = f"{registry_host}/{repo}:latest"
    one, two = (f"{registry_host}/{repo}:{t}" for t in ("one", "two"))
    images = write_docker_archive(tmp_path / "imgs.tar", [
        ArchiveImage(one, ["move-base", "move-one"], layer_size=MiB // 2),
        ArchiveImage(two, ["move-base", "move-two"], layer_size=MiB // 2),
    ])
    dockerd.docker("load", "-i", tmp_path / "imgs.tar")

    d_one = docker_push_digest(dockerd.docker("push", one).stdout, "one")
    dockerd.docker("tag", one, latest)
    assert docker_push_digest(dockerd.docker("push", latest).stdout, "latest") == d_one
    assert manifest_digest(registry_url, repo, "latest") == d_one

    d_two = docker_push_digest(dockerd.docker("push", two).stdout, "two")
    dockerd.docker("tag", two, latest)
    out = dockerd.docker("push", latest).stdout
    assert docker_push_digest(out, "latest") == d_two
    assert out.count("Layer already exists") == 2, out
    assert manifest_digest(registry_url, repo, "latest") == d_two
    # the old image is still there by digest and by its own tag
    assert manifest_digest(registry_url, repo, d_one) == d_one
    assert manifest_digest(registry_url, repo, "one") == d_one
    assert sorted(tags_list(registry_url, repo)) == ["latest", "one", "two"]

    # pushing the same thing again changes nothing
    out = dockerd.docker("push", two).stdout
    assert docker_push_digest(out, "two") == d_two
    assert out.count("Layer already exists") == 2, out

    dockerd.docker("rmi", one, two, latest)
    out = dockerd.docker("pull", latest).stdout
    assert f"Digest: {d_two}" in out
    info = json.loads(dockerd.docker("image", "inspect", latest).stdout)[0]
    assert info["Id"] == images[1].image_id
    dockerd.docker("rmi", latest)
