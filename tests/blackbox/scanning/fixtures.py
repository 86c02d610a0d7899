"""The scanning fixtures: images built offline from real content, each with its ground truth.

Every fixture is a `Fixture`: layers (uncompressed tar bytes plus the compression to push them
with), an image config, and the packages that a correct scanner must find in the merged image
(`Pkg`, with the index of the layer each one comes from). The truth comes from the ecosystems'
own tools where the content is real:

* `debian`: a Debian 12 minbase root filesystem made by `mmdebstrap` (one gzip layer); truth
  from `dpkg-query --admindir`.
* `rpm`: Rocky Linux 9 `os-release` and a real `var/lib/rpm/rpmdb.sqlite` made by Debian's
  `rpm` from dummy packages built with `rpmbuild`; truth from `rpm -qa --dbpath`.

and otherwise declared by the builder, which writes the files itself (`alpine`, `distroless`,
`languages`, `layered`, `index`, and the `unsupported-*` images, which must come back
UNSUPPORTED_IMAGE).

Build once into a cache directory; a test session does it through `build_all(DIR)` (see
conftest.py), the benchmark through

    cd tests/blackbox && python3 -m scanning.fixtures build DIR

which writes `DIR/<name>/` as an OCI image layout (`oci-layout`, `index.json`, `blobs/`) plus
`truth.json`. Building needs `mmdebstrap` (debian), `rpm`/`rpmbuild` (rpm), `zstd`, `gzip`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scanning import elf

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {"none": "application/vnd.oci.image.layer.v1.tar",
            "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
MTIME = 1_700_000_000
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("BERTH_SCAN_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# The package managers, with ECR's names (`vulnerablePackages[].packageManager`).
OS, PYTHON, NPM, GO, CARGO, JAR, GEM = "OS", "PYTHONPKG", "NODEPKG", "GOBINARY", "CARGO", "JAR", "GEMSPEC"
LANGUAGE_ECOSYSTEM = {PYTHON: "PyPI", NPM: "npm", GO: "Go", CARGO: "crates.io", JAR: "Maven", GEM: "RubyGems"}


@dataclass(frozen=True)
class Pkg:
    """A package a scanner must report. `name`/`version` are as installed (dpkg binary package
    and its version; rpm name and `[epoch:]version-release`; apk name; the distribution name as
    written for Python; `group:artifact` for Maven; the module path for Go). `source_*` is what
    the distribution's advisories name (dpkg Source, apk origin, rpm source RPM)."""
    manager: str
    name: str
    version: str
    layer: int = 0
    path: str = ""
    source_name: str | None = None
    source_version: str | None = None


@dataclass
class Layer:
    tar: bytes | None
    compression: str = "gzip"  # gzip | zstd | none
    _blob: bytes | None = field(default=None, repr=False)
    _diff_id: str | None = None  # for a layer given as a blob only

    @property
    def blob(self) -> bytes:
        if self._blob is None:
            self._blob = compress(self.tar, self.compression)
        return self._blob

    @property
    def media_type(self) -> str:
        return MT_LAYER[self.compression]

    @property
    def diff_id(self) -> str:
        return self._diff_id or sha256(self.tar)

    @property
    def digest(self) -> str:
        return sha256(self.blob)


@dataclass
class Fixture:
    name: str
    layers: list[Layer]
    packages: list[Pkg]
    os_id: str | None = None            # os-release ID
    os_version: str | None = None       # os-release VERSION_ID
    status: str = "COMPLETE"            # what a basic scan must end in
    architecture: str = "amd64"
    children: list["Fixture"] = field(default_factory=list)  # an image index's images

    @property
    def is_index(self) -> bool:
        return bool(self.children)

    def config(self) -> bytes:
        cfg = {"architecture": self.architecture, "os": "linux", "created": "2023-11-14T22:13:20Z",
               "config": {"Labels": {"org.berth.fixture": self.name}},
               "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]}}
        return canonical(cfg)

    def manifest(self) -> bytes:
        cfg = self.config()
        return canonical({
            "schemaVersion": 2, "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": len(layer.blob)}
                       for layer in self.layers]})

    def index(self) -> bytes:
        return canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
            {"mediaType": MT_MANIFEST, "digest": sha256(c.manifest()), "size": len(c.manifest()),
             "platform": {"architecture": c.architecture, "os": "linux"}} for c in self.children]})

    def top(self) -> tuple[bytes, str]:
        """The manifest pushed under the fixture's tag, with its media type."""
        return (self.index(), MT_INDEX) if self.is_index else (self.manifest(), MT_MANIFEST)

    @property
    def digest(self) -> str:
        return sha256(self.top()[0])

    def truth(self) -> dict:
        out = {"name": self.name, "os": {"id": self.os_id, "version_id": self.os_version}, "status": self.status,
               "architecture": self.architecture, "digest": self.digest,
               "layers": [layer.digest for layer in self.layers],
               "packages": [asdict(p) for p in self.packages]}
        if self.children:
            out["children"] = [c.truth() for c in self.children]
        return out


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def compress(data: bytes, how: str) -> bytes:
    if how == "none":
        return data
    if how == "gzip":
        # The gzip CLI (-n: no name or time) is several times faster than the module on big layers.
        if shutil.which("gzip"):
            return subprocess.run(["gzip", "-n", "-6", "-c"], input=data, capture_output=True, check=True).stdout
        return gzip.compress(data, 6, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-3", "-c"], input=data, capture_output=True, check=True).stdout
    raise ValueError(how)


class TarBuilder:
    """An uncompressed, reproducible tar: directories are added for every parent path."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs: set[str] = set()

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                self.tar.addfile(info)

    def file(self, path: str, data: bytes | str, mode: int = 0o644) -> "TarBuilder":
        data = data.encode() if isinstance(data, str) else data
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = len(data), mode, MTIME
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, path: str, target: str) -> "TarBuilder":
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, MTIME
        self.tar.addfile(info)
        return self

    def whiteout(self, path: str) -> "TarBuilder":
        """Deletes `path` of lower layers (`dir/.wh.name`)."""
        d, _, name = path.rpartition("/")
        return self.file(f"{d}/.wh.{name}" if d else f".wh.{name}", b"")

    def opaque(self, directory: str) -> "TarBuilder":
        """Hides everything lower layers hold in `directory`."""
        return self.file(f"{directory}/.wh..wh..opq", b"")

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def os_release(os_id: str, version_id: str, pretty: str, extra: str = "") -> str:
    return (f'PRETTY_NAME="{pretty}"\nNAME="{pretty.split(" ")[0]}"\nID={os_id}\nVERSION_ID="{version_id}"\n'
            f"{extra}")


DEBIAN12_OS_RELEASE = os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)",
                                 'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\n')


def dpkg_paragraph(pkg: str, version: str, source: str | None = None, arch: str = "amd64") -> str:
    lines = [f"Package: {pkg}", "Status: install ok installed", "Priority: optional", "Section: libs",
             "Installed-Size: 100", "Maintainer: Berth fixtures <fixtures@berth.invalid>",
             f"Architecture: {arch}"]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {pkg} (fixture)", " Built for Berth's scanning tests."]
    return "\n".join(lines) + "\n"


def dpkg_status(entries: list[tuple], extra: str = "") -> str:
    """`entries` = [(binary, version, source or "src (srcversion)" or None)]."""
    return "\n".join(dpkg_paragraph(*e) for e in entries) + extra


def deb_pkgs(entries: list[tuple], layer: int, path: str) -> list[Pkg]:
    out = []
    for binary, version, source in entries:
        src, srcv = binary, version
        if source:
            src, _, rest = source.partition(" (")
            srcv = rest.rstrip(")") if rest else version
        out.append(Pkg(OS, binary, version, layer, path, src, srcv))
    return out


def apk_installed(entries: list[tuple[str, str, str]]) -> str:
    """`entries` = [(name, version, origin)]."""
    paras = []
    for name, version, origin in entries:
        paras.append(f"C:Q1{hashlib.sha1(name.encode()).hexdigest()[:26]}=\nP:{name}\nV:{version}\nA:x86_64\n"
                     f"S:1024\nI:4096\nT:{name} (fixture)\nU:https://berth.invalid/\nL:MIT\no:{origin}\n"
                     f"m:Berth fixtures <fixtures@berth.invalid>\nt:{MTIME}\nc:0123456789abcdef\n")
    return "\n".join(paras) + "\n"


def python_dist_info(base: str, name: str, version: str, tb: TarBuilder) -> str:
    d = f"{base}/{name.replace('-', '_')}-{version}.dist-info"
    tb.file(f"{d}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: fixture\n\n"
                             f"Long description.\n")
    tb.file(f"{d}/RECORD", f"{d}/METADATA,,\n")
    return f"{d}/METADATA"


def python_egg_info(base: str, name: str, version: str, tb: TarBuilder) -> str:
    path = f"{base}/{name}-{version}-py3.11.egg-info/PKG-INFO"
    tb.file(path, f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\nSummary: fixture\n")
    return path


def npm_package(base: str, name: str, version: str, tb: TarBuilder) -> str:
    path = f"{base}/{name}/package.json"
    tb.file(path, json.dumps({"name": name, "version": version, "description": "fixture", "license": "MIT",
                              "main": "index.js"}, indent=2))
    tb.file(f"{base}/{name}/index.js", "module.exports = {};\n")
    return path


def gemspec(base: str, name: str, version: str, tb: TarBuilder) -> str:
    path = f"{base}/specifications/{name}-{version}.gemspec"
    tb.file(path, f"""# -*- encoding: utf-8 -*-
# stub: {name} {version} ruby lib

Gem::Specification.new do |s|
  s.name = "{name}".freeze
  s.version = "{version}"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["Berth fixtures".freeze]
  s.summary = "fixture".freeze
end
""")
    return path


def jar(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def maven_jar(group: str, artifact: str, version: str, extra: dict | None = None) -> bytes:
    return jar({
        "META-INF/MANIFEST.MF": f"Manifest-Version: 1.0\nImplementation-Title: {artifact}\n"
                                f"Implementation-Version: {version}\n\n",
        f"META-INF/maven/{group}/{artifact}/pom.properties":
            f"#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n",
        f"META-INF/maven/{group}/{artifact}/pom.xml":
            f"<project><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
            f"</project>\n",
        **(extra or {})})


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n"
                           f"{r.stderr[-2000:]}")
    return r


# ---------------------------------------------------------------------------------------------
# debian: a real Debian 12 minbase root filesystem
# ---------------------------------------------------------------------------------------------

DPKG_QUERY_FORMAT = "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n"


def debian_truth(admindir: Path, layer: int = 0) -> list[Pkg]:
    out = run(["dpkg-query", f"--admindir={admindir}", "-W", f"-f={DPKG_QUERY_FORMAT}"]).stdout
    pkgs = []
    for line in out.splitlines():
        name, version, src, srcv, status = line.split("\t")
        if status.strip() != "ii":
            continue
        pkgs.append(Pkg(OS, name, version, layer, "var/lib/dpkg/status", src, srcv))
    return pkgs


def build_debian(cache: Path) -> Fixture:
    """mmdebstrap's tarball of bookworm minbase, kept in `cache` (made again only if missing)."""
    tar_path = cache / "debian-rootfs.tar"
    if not tar_path.exists():
        if not shutil.which("mmdebstrap"):
            raise RuntimeError("mmdebstrap is not installed (apt-get install mmdebstrap)")
        tmp = cache / "debian-rootfs.tar.part"
        run(["mmdebstrap", "--variant=minbase", "--quiet", "--format=tar", DEBIAN_SUITE, tmp, DEBIAN_MIRROR],
            timeout=900, env={**os.environ, "SOURCE_DATE_EPOCH": str(MTIME)})
        tmp.rename(tar_path)
    with tempfile.TemporaryDirectory(dir=cache) as d:
        run(["tar", "-xf", tar_path, "-C", d, "./var/lib/dpkg"])
        pkgs = debian_truth(Path(d) / "var/lib/dpkg")
    gz = cache / "debian-rootfs.tar.gz"
    if not gz.exists() or gz.stat().st_mtime < tar_path.stat().st_mtime:
        part = cache / "debian-rootfs.tar.gz.part"
        with open(tar_path, "rb") as src, open(part, "wb") as dst:
            subprocess.run(["gzip", "-n", "-6", "-c"], stdin=src, stdout=dst, check=True)
        part.rename(gz)
    layer = Layer(tar_path.read_bytes(), "gzip", _blob=gz.read_bytes())
    return Fixture("debian", [layer], pkgs, "debian", "12")


# ---------------------------------------------------------------------------------------------
# rpm: a real rpmdb.sqlite from Debian's rpm
# ---------------------------------------------------------------------------------------------

# (source name, epoch or None, version, release, binary subpackages besides the main one)
RPM_SPECS = [
    ("openssl", 1, "3.0.7", "27.el9", ["libs"]),
    ("zlib", None, "1.2.11", "40.el9", []),
    ("bash", None, "5.1.8", "6.el9_1", []),
    ("curl", None, "7.76.1", "26.el9", ["minimal"]),
    ("rocky-release", None, "9.3", "1.2.el9", []),
]


def rpm_database(work: Path) -> tuple[Path, list[Pkg]]:
    """Builds the dummy packages and installs them (--justdb) into `work/db/rpmdb.sqlite`."""
    top, db = work / "top", work / "db"
    db.mkdir(parents=True)
    for name, epoch, version, release, subs in RPM_SPECS:
        spec = work / f"{name}.spec"
        text = [f"Name: {name}"] + ([f"Epoch: {epoch}"] if epoch is not None else []) + [
            f"Version: {version}", f"Release: {release}", "Summary: Berth fixture", "License: MIT",
            "BuildArch: x86_64", "%description", "A package made for Berth's scanning tests."]
        for sub in subs:
            text += [f"%package {sub}", "Summary: Berth fixture subpackage", f"%description {sub}", "Subpackage."]
        text += ["%files"] + [f"%files {sub}" for sub in subs]
        spec.write_text("\n".join(text) + "\n")
        run(["rpmbuild", "-bb", "--quiet", "--nodeps", "--define", f"_topdir {top}",
             "--define", "_build_id_links none", spec], timeout=120)
    rpms = sorted(str(p) for p in top.rglob("*.rpm"))
    dbdef = ["--dbpath", str(db), "--define", "_db_backend sqlite"]
    run(["rpm", *dbdef, "--initdb"])
    run(["rpm", "-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos", *dbdef, *rpms])
    out = run(["rpm", *dbdef, "-qa", "--qf", "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{SOURCERPM}\\n"]).stdout
    pkgs = []
    for line in sorted(out.splitlines()):
        name, epoch, version, release, srpm = line.split("\t")
        evr = (f"{epoch}:" if epoch != "(none)" else "") + f"{version}-{release}"
        source = srpm.removesuffix(".src.rpm").rsplit("-", 2)[0]
        pkgs.append(Pkg(OS, name, evr, 0, "var/lib/rpm/rpmdb.sqlite", source, evr))
    return db / "rpmdb.sqlite", pkgs


ROCKY9_OS_RELEASE = os_release("rocky", "9.3", "Rocky Linux 9.3 (Blue Onyx)",
                               'ID_LIKE="rhel centos fedora"\nPLATFORM_ID="platform:el9"\n')


def build_rpm(cache: Path) -> tuple[Fixture, bytes]:
    with tempfile.TemporaryDirectory(dir=cache) as d:
        dbfile, pkgs = rpm_database(Path(d))
        rpmdb = dbfile.read_bytes()
    tb = TarBuilder()
    tb.file("usr/lib/os-release", ROCKY9_OS_RELEASE)
    tb.symlink("etc/os-release", "../usr/lib/os-release")
    tb.file("var/lib/rpm/rpmdb.sqlite", rpmdb)
    return Fixture("rpm", [Layer(tb.bytes())], pkgs, "rocky", "9.3"), rpmdb


# ---------------------------------------------------------------------------------------------
# hand-made images
# ---------------------------------------------------------------------------------------------

ALPINE_PACKAGES = [
    ("musl", "1.2.4_git20230717-r4", "musl"),
    ("busybox", "1.36.1-r15", "busybox"),
    ("busybox-binsh", "1.36.1-r15", "busybox"),
    ("ssl_client", "1.36.1-r15", "busybox"),
    ("libcrypto3", "3.1.4-r1", "openssl"),
    ("libssl3", "3.1.4-r1", "openssl"),
    ("zlib", "1.3-r2", "zlib"),
    ("apk-tools", "2.14.0-r5", "apk-tools"),
    ("alpine-baselayout-data", "3.4.3-r2", "alpine-baselayout"),
    ("ca-certificates-bundle", "20230506-r0", "ca-certificates"),
]
ALPINE_OS_RELEASE = os_release("alpine", "3.19.1", "Alpine Linux v3.19")


def alpine_image(name: str, packages, arch: str = "amd64") -> Fixture:
    tb = TarBuilder()
    tb.file("etc/os-release", ALPINE_OS_RELEASE)
    tb.file("etc/alpine-release", "3.19.1\n")
    tb.file("lib/apk/db/installed", apk_installed(packages))
    pkgs = [Pkg(OS, n, v, 0, "lib/apk/db/installed", o, v) for n, v, o in packages]
    return Fixture(name, [Layer(tb.bytes())], pkgs, "alpine", "3.19.1", architecture=arch)


DISTROLESS_PACKAGES = [
    ("base-files", "12.4+deb12u5", None),
    ("netbase", "6.4", None),
    ("tzdata", "2024a-0+deb12u1", None),
    ("libc6", "2.36-9+deb12u4", "glibc"),
    ("libssl3", "3.0.11-1~deb12u2", "openssl"),
    ("openssl", "3.0.11-1~deb12u2", None),
    ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
]


def build_distroless() -> Fixture:
    tb = TarBuilder()
    tb.file("etc/os-release", DEBIAN12_OS_RELEASE)
    pkgs = []
    for entry in DISTROLESS_PACKAGES:
        path = f"var/lib/dpkg/status.d/{entry[0]}"
        tb.file(path, dpkg_paragraph(*entry))
        tb.file(f"{path}.md5sums", f"d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/{entry[0]}/copyright\n")
        pkgs += deb_pkgs([entry], 0, path)
    return Fixture("distroless", [Layer(tb.bytes())], pkgs, "debian", "12")


LANG_DEB = [("libc6", "2.36-9+deb12u4", "glibc"), ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
            ("tar", "1.34+dfsg-1.2+deb12u1", None)]
SITE = "usr/local/lib/python3.11/site-packages"


def build_languages() -> Fixture:
    """Debian 12 (so basic and enhanced differ) with packages of every language ecosystem."""
    pkgs: list[Pkg] = []
    base = TarBuilder()
    base.file("usr/lib/os-release", DEBIAN12_OS_RELEASE)
    base.symlink("etc/os-release", "../usr/lib/os-release")
    base.file("var/lib/dpkg/status", dpkg_status(LANG_DEB))
    pkgs += deb_pkgs(LANG_DEB, 0, "var/lib/dpkg/status")

    app = TarBuilder()
    # Python: dist-info (one name written with capitals, one with a dot) and an egg-info.
    for name, version in [("PyYAML", "5.3.1"), ("zope.interface", "5.4.0"), ("requests", "2.25.1"),
                          ("urllib3", "1.26.18")]:
        pkgs.append(Pkg(PYTHON, name, version, 1, python_dist_info(SITE, name, version, app)))
    pkgs.append(Pkg(PYTHON, "Jinja2", "2.10", 1,
                    python_egg_info("usr/lib/python3/dist-packages", "Jinja2", "2.10", app)))
    # npm: an application's node_modules with a scoped package and a nested node_modules (two
    # versions of qs), and a package.json without name/version (not a package).
    app.file("srv/app/package.json", json.dumps({"name": "fixture-app", "version": "1.0.0", "private": True}))
    nm = "srv/app/node_modules"
    for name, version, where in [("lodash", "4.17.15", nm), ("@babel/traverse", "7.23.0", nm),
                                 ("express", "4.17.1", nm), ("qs", "6.11.0", nm),
                                 ("qs", "6.7.0", f"{nm}/express/node_modules"), ("minimist", "1.2.8", nm)]:
        pkgs.append(Pkg(NPM, name, version, 1, npm_package(where, name, version, app)))
    app.file(f"{nm}/lodash/fp/package.json", json.dumps({"main": "../fp.js"}))
    # Go: a binary with the stdlib version, deps, a replaced dep, a pseudo-version, +incompatible.
    go_deps = [("golang.org/x/net", "v0.17.0"), ("github.com/gin-gonic/gin", "v1.9.1"),
               ("gopkg.in/yaml.v3", "v3.0.0-20200313102051-9f266ea9e77c"),
               ("github.com/docker/docker", "v20.10.0+incompatible"),
               ("github.com/berth-fixtures/orig", "v1.0.0", ("github.com/berth-fixtures/fork", "v1.2.0"))]
    gobin = "usr/local/bin/goapp"
    app.file(gobin, elf.go_binary("go1.21.3", "example.com/goapp/cmd/goapp", ("example.com/goapp", "(devel)"),
                                  go_deps), mode=0o755)
    pkgs.append(Pkg(GO, "stdlib", "go1.21.3", 1, gobin))
    for dep in go_deps:
        path, version = (dep[2] if len(dep) > 2 else dep[:2])
        pkgs.append(Pkg(GO, path, version, 1, gobin))
    # Rust: cargo-auditable; the local root crate is not a crates.io package.
    crates = [("rustapp", "0.1.0", "local", True), ("smallvec", "1.6.0", "crates.io", False),
              ("time", "0.1.43", "crates.io", False), ("regex", "1.5.4", "crates.io", False),
              ("serde", "1.0.190", "crates.io", False)]
    rbin = "usr/local/bin/rustapp"
    app.file(rbin, elf.rust_binary([
        {"name": n, "version": v, "source": s, "kind": "runtime",
         "dependencies": list(range(1, len(crates))) if root else [], "root": root}
        for n, v, s, root in crates]), mode=0o755)
    pkgs += [Pkg(CARGO, n, v, 1, rbin) for n, v, s, _ in crates if s == "crates.io"]
    # Java: a jar, and a war holding a jar.
    log4j = "opt/app/lib/log4j-core-2.14.1.jar"
    app.file(log4j, maven_jar("org.apache.logging.log4j", "log4j-core", "2.14.1"))
    pkgs.append(Pkg(JAR, "org.apache.logging.log4j:log4j-core", "2.14.1", 1, log4j))
    ctext = "opt/app/lib/commons-text-1.9.jar"
    app.file(ctext, maven_jar("org.apache.commons", "commons-text", "1.9"))
    pkgs.append(Pkg(JAR, "org.apache.commons:commons-text", "1.9", 1, ctext))
    war = "opt/app/webapp.war"
    app.file(war, maven_jar("com.example", "webapp", "1.0.0", {
        "WEB-INF/lib/jackson-databind-2.9.10.jar": maven_jar("com.fasterxml.jackson.core", "jackson-databind",
                                                             "2.9.10"),
        "WEB-INF/web.xml": "<web-app/>\n"}))
    pkgs.append(Pkg(JAR, "com.example:webapp", "1.0.0", 1, war))
    pkgs.append(Pkg(JAR, "com.fasterxml.jackson.core:jackson-databind", "2.9.10", 1,
                    f"{war}!/WEB-INF/lib/jackson-databind-2.9.10.jar"))
    # Ruby
    for name, version in [("rack", "2.2.3"), ("nokogiri", "1.13.0"), ("rake", "13.0.6")]:
        pkgs.append(Pkg(GEM, name, version, 1, gemspec("usr/lib/ruby/gems/3.1.0", name, version, app)))
    return Fixture("languages", [Layer(base.bytes()), Layer(app.bytes())], pkgs, "debian", "12")


LAYERED_DEB0 = [("libc6", "2.36-9+deb12u4", "glibc"), ("libssl3", "3.0.11-1~deb12u2", "openssl"),
                ("zlib1g", "1:1.2.13.dfsg-1", "zlib")]
LAYERED_DEB1 = [("libc6", "2.36-9+deb12u4", "glibc"), ("libssl3", "3.0.13-1~deb12u1", "openssl"),
                ("zlib1g", "1:1.2.13.dfsg-1", "zlib"), ("tzdata", "2024a-0+deb12u1", None)]


def build_layered() -> Fixture:
    """Three layers (gzip, zstd, plain tar):

    0. Debian 12, dpkg status {libc6, libssl3 3.0.11, zlib1g}; Python requests + urllib3; npm
       lodash 4.17.15 + minimist 1.2.5 under srv/app/node_modules; a Go binary (go1.20, x/text).
    1. (zstd) a new dpkg status: libssl3 upgraded to 3.0.13, tzdata added, the rest unchanged;
       requests' dist-info whited out; srv/app/node_modules made opaque, with lodash 4.17.21.
    2. (plain) the Go binary whited out; Python PyYAML added.

    What is left, with the layer each name@version persists from: libc6@0, zlib1g@0,
    libssl3 3.0.13@1, tzdata@1, urllib3@0, lodash 4.17.21@1, PyYAML@2."""
    l0, l1, l2 = TarBuilder(), TarBuilder(), TarBuilder()
    l0.file("etc/os-release", DEBIAN12_OS_RELEASE)
    l0.file("var/lib/dpkg/status", dpkg_status(LAYERED_DEB0))
    python_dist_info(SITE, "requests", "2.25.1", l0)
    urllib3 = python_dist_info(SITE, "urllib3", "1.26.4", l0)
    nm = "srv/app/node_modules"
    npm_package(nm, "lodash", "4.17.15", l0)
    npm_package(nm, "minimist", "1.2.5", l0)
    l0.file("usr/local/bin/gotool", elf.go_binary("go1.20", "example.com/gotool", ("example.com/gotool", "(devel)"),
                                                  [("golang.org/x/text", "v0.3.7")]), mode=0o755)

    l1.file("var/lib/dpkg/status", dpkg_status(LAYERED_DEB1))
    l1.whiteout(f"{SITE}/requests-2.25.1.dist-info")
    l1.opaque(nm)
    lodash = npm_package(nm, "lodash", "4.17.21", l1)

    l2.whiteout("usr/local/bin/gotool")
    pyyaml = python_dist_info(SITE, "PyYAML", "5.3.1", l2)

    status = "var/lib/dpkg/status"
    pkgs = [p for p in deb_pkgs(LAYERED_DEB1, 1, status) if p.name in ("libssl3", "tzdata")]
    pkgs += [p for p in deb_pkgs(LAYERED_DEB0, 0, status) if p.name in ("libc6", "zlib1g")]
    pkgs += [Pkg(PYTHON, "urllib3", "1.26.4", 0, urllib3), Pkg(NPM, "lodash", "4.17.21", 1, lodash),
             Pkg(PYTHON, "PyYAML", "5.3.1", 2, pyyaml)]
    return Fixture("layered", [Layer(l0.bytes(), "gzip"), Layer(l1.bytes(), "zstd"), Layer(l2.bytes(), "none")],
                   pkgs, "debian", "12")


def build_index() -> Fixture:
    amd = alpine_image("index-amd64", ALPINE_PACKAGES[:4] + [("zlib", "1.3-r2", "zlib")], "amd64")
    arm = alpine_image("index-arm64", [("musl", "1.2.4_git20230717-r5", "musl"), ("busybox", "1.36.1-r19", "busybox"),
                                       ("zlib", "1.3.1-r0", "zlib"), ("libcrypto3", "3.1.4-r1", "openssl")], "arm64")
    return Fixture("index", [], [], "alpine", "3.19.1", children=[amd, arm])


def build_unsupported(rpmdb: bytes) -> list[Fixture]:
    # An OS that is not an OSV ecosystem, with a real rpm database.
    amzn = TarBuilder()
    amzn.file("etc/os-release", os_release("amzn", "2023", "Amazon Linux 2023.3.20240312",
                                           'ID_LIKE="fedora"\nPLATFORM_ID="platform:al2023"\n'))
    amzn.file("var/lib/rpm/rpmdb.sqlite", rpmdb)
    # A supported OS whose rpm database is Berkeley DB (rpm < 4.16): a hash database's metadata
    # page (magic 0x00061561 at offset 12), which no reader here supports.
    bdb = TarBuilder()
    bdb.file("etc/os-release", ROCKY9_OS_RELEASE)
    page = bytearray(4096)
    page[12:16] = (0x00061561).to_bytes(4, "little")
    page[16:20] = (9).to_bytes(4, "little")      # version
    page[20:24] = (4096).to_bytes(4, "little")   # page size
    bdb.file("var/lib/rpm/Packages", bytes(page) * 4)
    return [Fixture("unsupported-amzn", [Layer(amzn.bytes())], [], "amzn", "2023", status="UNSUPPORTED_IMAGE"),
            Fixture("unsupported-bdb", [Layer(bdb.bytes())], [], "rocky", "9.3", status="UNSUPPORTED_IMAGE")]


def build_big(cache: Path, debian: Fixture, gib: float = 1.0) -> Fixture:
    """For the kill -9 test: the Debian rootfs under a layer holding `gib` GiB of zeros (a few MB
    of gzip that takes seconds to inflate), so a scan is still running when it is killed."""
    path = cache / f"big-{gib}.tar.gz"
    size = int(gib * (1 << 30))
    diff_file = path.with_suffix(".diffid")
    if not path.exists() or not diff_file.exists():
        info = tarfile.TarInfo("opt/big/zeros.bin")
        info.size, info.mtime, info.mode = size, MTIME, 0o644
        h = hashlib.sha256()
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as out:
            p = subprocess.Popen(["gzip", "-n", "-1", "-c"], stdin=subprocess.PIPE, stdout=out)

            def put(b: bytes) -> None:
                h.update(b)
                p.stdin.write(b)
            put(info.tobuf(format=tarfile.GNU_FORMAT))
            chunk = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                put(chunk)
            put(b"\0" * ((-size) % 512) + b"\0" * 1024)  # padding, then the end-of-archive blocks
            p.stdin.close()
            assert p.wait() == 0
        diff_file.write_text("sha256:" + h.hexdigest())
        tmp.rename(path)
    big = Layer(None, "gzip", _blob=path.read_bytes(), _diff_id=diff_file.read_text())
    return Fixture("big", [*debian.layers, big], list(debian.packages), "debian", "12")


# ---------------------------------------------------------------------------------------------
# building and writing
# ---------------------------------------------------------------------------------------------

HAND_MADE = ("alpine", "distroless", "languages", "layered", "index", "unsupported-amzn", "unsupported-bdb", "rpm")


def build_all(cache: Path, *, debian: bool = True, log=print) -> dict[str, Fixture]:
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Fixture] = {}
    t = time.monotonic()
    rpm_fixture, rpmdb = build_rpm(cache)
    out["rpm"] = rpm_fixture
    out["alpine"] = alpine_image("alpine", ALPINE_PACKAGES)
    out["distroless"] = build_distroless()
    out["languages"] = build_languages()
    out["layered"] = build_layered()
    out["index"] = build_index()
    for f in build_unsupported(rpmdb):
        out[f.name] = f
    log(f"hand-made fixtures: {time.monotonic() - t:.1f}s")
    if debian:
        t = time.monotonic()
        out["debian"] = build_debian(cache)
        log(f"debian rootfs: {time.monotonic() - t:.1f}s")
    return out


def write_layout(fixture: Fixture, directory: Path) -> None:
    """An OCI image layout of the fixture (an index's children included) plus truth.json."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> None:
        p = blobs / sha256(data).split(":")[1]
        if not p.exists():
            p.write_bytes(data)

    for img in fixture.children or [fixture]:
        put(img.config())
        put(img.manifest())
        for layer in img.layers:
            put(layer.blob)
    body, mt = fixture.top()
    put(body)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt, "digest": sha256(body), "size": len(body),
         "annotations": {"org.opencontainers.image.ref.name": fixture.name}}]}))
    (directory / "truth.json").write_text(json.dumps(fixture.truth(), indent=1, sort_keys=True))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "build":
        print("usage: python3 -m scanning.fixtures build DIR [--no-debian]", file=sys.stderr)
        return 2
    target = Path(argv[1])
    fixtures = build_all(target / ".cache", debian="--no-debian" not in argv,
                         log=lambda m: print(m, file=sys.stderr))
    for name, fx in fixtures.items():
        write_layout(fx, target / name)
        print(f"{name}\t{fx.digest}\t{len(fx.packages)} packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
