"""podman (containers/image, vfs storage in a temp dir) against the registry
under test: import/load, push as OCI and as Docker schema 2, rmi, pull, and a
two-platform manifest list made with ``podman manifest``."""

from __future__ import annotations

import json

from tools.images import (DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, ArchiveImage,
                          docker_save_files, layer_files, layer_tar, write_docker_archive)
from tools.registry_api import get_manifest, manifest_digest, tags_list

MiB = 1024 * 1024


def _digestfile(path) -> str:
    d = path.read_text().strip()
    assert d.startswith("sha256:") and len(d) == 71, d
    return d


def _saved_files(podman, ref, dest) -> dict[str, bytes]:
    podman("save", "--format", "docker-archive", "-o", dest, ref)
    _, files = docker_save_files(dest)
    return files


def test_import_push_rmi_pull_roundtrip(podman, registry_url, registry_host, repo, tmp_path):
    files = layer_files("podman-import", 1 * MiB)
    (tmp_path / "rootfs.tar").write_bytes(layer_tar(files))
    ref = f"{registry_host}/{repo}:v1"

    podman("import", tmp_path / "rootfs.tar", ref)
    image_id = podman.image_id(ref)

    podman("push", "--tls-verify=false", "--digestfile", tmp_path / "digest", ref)
    pushed = _digestfile(tmp_path / "digest")
    assert manifest_digest(registry_url, repo, "v1") == pushed
    assert manifest_digest(registry_url, repo, pushed) == pushed

    podman("rmi", ref)
    assert podman("image", "exists", ref, check=False).returncode != 0

    out = podman("pull", "--tls-verify=false", ref).stdout
    assert out.strip().splitlines()[-1] == image_id
    assert podman.image_id(ref) == image_id
    assert podman("image", "inspect", "--format", "{{.Digest}}", ref).stdout.strip() == pushed
    assert f"{registry_host}/{repo}@{pushed}" in podman.repo_digests(ref)
    assert _saved_files(podman, ref, tmp_path / "saved.tar") == dict(files)
    podman("rmi", ref)


def test_push_as_oci_and_docker_v2s2(podman, registry_url, registry_host, repo, tmp_path):
    local = "localhost/berth-bb/podman-formats:src"
    [img] = write_docker_archive(tmp_path / "img.tar", [
        ArchiveImage(local, ["podman-base", "podman-top"], layer_size=MiB)])
    podman("load", "-i", tmp_path / "img.tar")
    assert podman.image_id(local) == img.image_id.split(":", 1)[1]

    expect = {"oci": OCI_MANIFEST, "v2s2": DOCKER_MANIFEST}
    digests, configs = {}, {}
    for fmt in ("oci", "v2s2"):
        dest = f"{registry_host}/{repo}:{fmt}"
        podman("push", "--tls-verify=false", "--format", fmt,
               "--digestfile", tmp_path / f"digest-{fmt}", local, f"docker://{dest}")
        digests[fmt] = _digestfile(tmp_path / f"digest-{fmt}")
        m = get_manifest(registry_url, repo, fmt)
        assert m.headers["Content-Type"].split(";")[0].strip() == expect[fmt]
        assert m.headers["Docker-Content-Digest"] == digests[fmt]
        body = m.json()
        configs[fmt] = body["config"]["digest"]
        assert len(body["layers"]) == 2
    # pushing as OCI re-encodes the Docker config as an OCI config (new
    # digest); as v2s2 the config goes up byte-for-byte
    assert configs["v2s2"] == img.image_id
    assert digests["oci"] != digests["v2s2"]
    assert sorted(tags_list(registry_url, repo)) == ["oci", "v2s2"]

    podman("rmi", local)
    for fmt in ("oci", "v2s2"):
        ref = f"{registry_host}/{repo}:{fmt}"
        podman("pull", "--tls-verify=false", ref)
        assert podman.image_id(ref) == configs[fmt].split(":", 1)[1]
        assert f"{registry_host}/{repo}@{digests[fmt]}" in podman.repo_digests(ref)
        assert _saved_files(podman, ref, tmp_path / f"saved-{fmt}.tar") == img.files
    podman("rmi", f"{registry_host}/{repo}:oci", f"{registry_host}/{repo}:v2s2")


def test_manifest_list_two_platforms(podman, registry_url, registry_host, repo, tmp_path):
    amd = ArchiveImage("localhost/berth-bb/podman-list:amd64", ["plist-base", "plist-amd64"],
                       layer_size=MiB // 2)
    arm = ArchiveImage("localhost/berth-bb/podman-list:arm64", ["plist-base", "plist-arm64"],
                       layer_size=MiB // 2, arch="arm64", variant="v8")
    write_docker_archive(tmp_path / "imgs.tar", [amd, arm])
    podman("load", "-i", tmp_path / "imgs.tar")

    lst = f"localhost/berth-bb/podman-list-{repo.replace('/', '-')}"
    podman("manifest", "create", lst)
    try:
        podman("manifest", "add", "--os", "linux", "--arch", "amd64", lst,
               f"containers-storage:{amd.tag}")
        podman("manifest", "add", "--os", "linux", "--arch", "arm64", "--variant", "v8", lst,
               f"containers-storage:{arm.tag}")
        dest = f"{registry_host}/{repo}:multi"
        podman("manifest", "push", "--all", "--tls-verify=false",
               "--digestfile", tmp_path / "digest", lst, f"docker://{dest}")
    finally:
        podman("manifest", "rm", lst, check=False)
    pushed = _digestfile(tmp_path / "digest")
    assert manifest_digest(registry_url, repo, "multi") == pushed

    index = get_manifest(registry_url, repo, "multi")
    assert index.headers["Docker-Content-Digest"] == pushed
    body = index.json()
    assert body.get("mediaType", index.headers["Content-Type"]) in (
        OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")
    platforms = {f'{m["platform"]["os"]}/{m["platform"]["architecture"]}': m
                 for m in body["manifests"]}
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    for plat, img in (("linux/amd64", amd), ("linux/arm64", arm)):
        child = platforms[plat]
        assert manifest_digest(registry_url, repo, child["digest"]) == child["digest"]
        child_body = get_manifest(registry_url, repo, child["digest"]).json()
        assert child_body["config"]["digest"] == img.image_id

    # pull one platform out of the list
    podman("rmi", amd.tag, arm.tag)
    ref = f"{registry_host}/{repo}:multi"
    podman("pull", "--tls-verify=false", "--arch", "arm64", "--variant", "v8", ref)
    assert podman.image_id(ref) == arm.image_id.split(":", 1)[1]
    info = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert info["Architecture"] == "arm64"
    podman("rmi", ref)
