"""Deterministic image material for the black-box client tests.

Everything here is built in Python from a seeded PRNG, so a test can say
exactly which bytes it expects back from the registry:

* ``layer_tar``: an uncompressed, reproducible rootfs tar (a text file and a
  binary-like file), usable for ``docker import`` / ``podman import``;
* ``write_docker_archive``: a ``docker load`` archive (manifest.json, config,
  one ``layer.tar`` per layer) with several layers, so that images can share a
  base layer;
* ``write_oci_layout``: an OCI image layout on disk (``oci-layout``,
  ``index.json``, ``blobs/sha256/...``) holding an image index with one
  manifest per platform, or a single image manifest, for skopeo.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

# Every manifest type a client of this suite may push; used as the Accept
# header when asking the registry for a manifest's digest.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

FIXED_MTIME = 1_700_000_000  # reproducible tar headers and configs
FIXED_CREATED = "2023-11-14T22:13:20Z"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def prng_bytes(seed: str | int, size: int) -> bytes:
    """``size`` pseudo-random bytes, fully determined by ``seed``."""
    return random.Random(f"berth-blackbox:{seed}").randbytes(size)


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_files(seed: str, size: int) -> list[tuple[str, bytes]]:
    """The files of one test layer: a text file naming the seed and a
    binary-like file of ``size`` PRNG bytes, both under a seed-specific dir."""
    safe = "".join(c if c.isalnum() else "_" for c in str(seed))
    return [
        (f"berth-test/{safe}/README.txt", f"berth black-box layer {seed}\n".encode()),
        (f"berth-test/{safe}/payload.bin", prng_bytes(seed, size)),
    ]


def layer_tar(files: list[tuple[str, bytes]]) -> bytes:
    """A reproducible, uncompressed tar of ``files`` (with parent dirs)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs_done: set[str] = set()
        for name, data in files:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d in dirs_done:
                    continue
                dirs_done.add(d)
                info = tarfile.TarInfo(d + "/")
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = FIXED_MTIME
                tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".bin") else 0o644
            info.mtime = FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """Reproducible gzip (no name, mtime 0)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()


def image_config(diff_ids: list[str], arch: str = "amd64", os_: str = "linux",
                 variant: str | None = None, label: str = "") -> bytes:
    cfg = {
        "architecture": arch,
        "os": os_,
        "created": FIXED_CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/berth-test/none"],
            "Labels": {"org.berth.test": label or "blackbox"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": FIXED_CREATED, "created_by": f"berth blackbox layer {i}"}
                    for i in range(len(diff_ids))],
    }
    if variant:
        cfg["variant"] = variant
    return canonical_json(cfg)


# ---------------------------------------------------------------- docker load


@dataclass
class ArchiveImage:
    """One image inside a docker-archive: its tag and its layers' seeds.
    Layers with the same seed (and size) are byte-identical, so two images
    listing the same first seed share their base layer."""

    tag: str
    layer_seeds: list[str]
    layer_size: int = 256 * 1024
    label: str = ""
    arch: str = "amd64"
    variant: str | None = None
    # filled in by write_docker_archive
    image_id: str = ""
    diff_ids: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)


def write_docker_archive(path: Path, images: list[ArchiveImage]) -> list[ArchiveImage]:
    """Write a ``docker load`` / ``podman load`` archive holding ``images``.

    Sets ``image_id`` (sha256 of the config, i.e. what docker reports as the
    image ID), ``diff_ids`` and ``files`` (every regular file of every layer)
    on each image."""
    members: dict[str, bytes] = {}
    manifest = []
    for img in images:
        layer_paths, diff_ids, files = [], [], {}
        for seed in img.layer_seeds:
            lf = layer_files(seed, img.layer_size)
            data = layer_tar(lf)
            d = sha256_digest(data)
            hexd = d.split(":", 1)[1]
            members[f"{hexd}/layer.tar"] = data
            members[f"{hexd}/VERSION"] = b"1.0"
            layer_paths.append(f"{hexd}/layer.tar")
            diff_ids.append(d)
            files.update(dict(lf))
        cfg = image_config(diff_ids, arch=img.arch, variant=img.variant,
                           label=img.label or img.tag)
        cfg_digest = sha256_digest(cfg)
        members[cfg_digest.split(":", 1)[1] + ".json"] = cfg
        manifest.append({"Config": cfg_digest.split(":", 1)[1] + ".json",
                         "RepoTags": [img.tag], "Layers": layer_paths})
        img.image_id, img.diff_ids, img.files = cfg_digest, diff_ids, files
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return images


def tar_regular_files(tar_bytes: bytes) -> dict[str, bytes]:
    """Regular files of an uncompressed or gzip tar, name -> content."""
    if tar_bytes[:2] == b"\x1f\x8b":
        tar_bytes = gzip.decompress(tar_bytes)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for m in tar.getmembers():
            if m.isfile():
                out[m.name.lstrip("./")] = tar.extractfile(m).read()
    return out


def docker_save_files(saved_tar: Path) -> tuple[dict, dict[str, bytes]]:
    """Read a ``docker save`` archive: (its manifest.json entry, the union of
    all regular files of all its layers)."""
    with tarfile.open(saved_tar, "r:") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert len(manifest) == 1, manifest
        files: dict[str, bytes] = {}
        for layer in manifest[0]["Layers"]:
            files.update(tar_regular_files(tar.extractfile(layer).read()))
    return manifest[0], files


# ---------------------------------------------------------------- OCI layout


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self, **extra) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        d.update(extra)
        return d


@dataclass
class OciLayout:
    path: Path
    blobs: dict[str, bytes]            # digest -> bytes, everything written
    refs: dict[str, str]               # tag -> top-level digest
    platform_manifests: dict[str, dict[str, str]]  # tag -> "os/arch" -> manifest digest


def oci_image(seed: str, arch: str, layer_size: int, shared_base: bytes | None = None
              ) -> tuple[Blob, list[Blob]]:
    """An OCI image manifest for ``arch`` and every blob it references.
    ``shared_base`` (an uncompressed tar) is prepended as a common layer."""
    layers_raw = []
    if shared_base is not None:
        layers_raw.append(shared_base)
    layers_raw.append(layer_tar(layer_files(f"{seed}-{arch}", layer_size)))
    layer_blobs = [Blob(OCI_LAYER_GZIP, gzip_bytes(raw)) for raw in layers_raw]
    diff_ids = [sha256_digest(raw) for raw in layers_raw]
    config = Blob(OCI_CONFIG, image_config(diff_ids, arch=arch, label=f"{seed}-{arch}"))
    manifest = Blob(OCI_MANIFEST, canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layer_blobs],
        "annotations": {"org.berth.test.seed": seed},
    }))
    return manifest, [config, *layer_blobs]


def write_oci_layout(path: Path, seed: str, multi_tag: str = "multi",
                     single_tag: str = "single", archs=("amd64", "arm64"),
                     layer_size: int = 256 * 1024) -> OciLayout:
    """An OCI layout with two references:

    * ``multi_tag``: an image index with one manifest per arch in ``archs``
      (linux), each with its own config and its own layer plus a shared base
      layer;
    * ``single_tag``: a single-platform linux/amd64 image manifest (the one
      also in the index), for pushing as Docker schema 2.
    """
    path.mkdir(parents=True, exist_ok=True)
    blobs: dict[str, bytes] = {}

    def put(b: Blob):
        blobs[b.digest] = b.data

    base = layer_tar(layer_files(f"{seed}-base", layer_size))
    entries, per_platform, first_manifest = [], {}, None
    for arch in archs:
        manifest, others = oci_image(seed, arch, layer_size, shared_base=base)
        for b in (manifest, *others):
            put(b)
        platform = {"architecture": arch, "os": "linux"}
        if arch == "arm64":
            platform["variant"] = "v8"
        entries.append(manifest.descriptor(platform=platform))
        per_platform[f"linux/{arch}"] = manifest.digest
        first_manifest = first_manifest or manifest
    index = Blob(OCI_INDEX, canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
        "annotations": {"org.berth.test.seed": seed},
    }))
    put(index)

    top = {
        "schemaVersion": 2,
        "manifests": [
            index.descriptor(annotations={"org.opencontainers.image.ref.name": multi_tag}),
            first_manifest.descriptor(annotations={"org.opencontainers.image.ref.name": single_tag}),
        ],
    }
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (path / "index.json").write_bytes(canonical_json(top))
    bdir = path / "blobs" / "sha256"
    bdir.mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (bdir / digest.split(":", 1)[1]).write_bytes(data)
    return OciLayout(path=path, blobs=blobs,
                     refs={multi_tag: index.digest, single_tag: first_manifest.digest},
                     platform_manifests={multi_tag: per_platform})


def read_oci_layout_blobs(path: Path) -> dict[str, bytes]:
    """Every blob of an OCI layout on disk, digest -> bytes (the file name is
    trusted only after checking it against the content)."""
    out = {}
    for f in sorted((path / "blobs" / "sha256").iterdir()):
        data = f.read_bytes()
        assert sha256_digest(data) == "sha256:" + f.name, f"corrupt blob file {f}"
        out["sha256:" + f.name] = data
    return out


def oci_layout_ref(path: Path, tag: str) -> str:
    """The digest that ``index.json`` of a layout names for ``tag``."""
    top = json.loads((path / "index.json").read_text())
    for m in top.get("manifests", []):
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return m["digest"]
    raise KeyError(f"{tag} not in {path}/index.json: {top}")
