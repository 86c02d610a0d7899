"""Server-free checks: the fixtures are what they claim to be (read back with the ecosystems'
own tools where there is one), the comparators agree with known orderings, and the oracle's
findings are still those checked in under golden/."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import zipfile
import zlib

import pytest

from scanning import elf, fixtures, golden, oracle


def members(layer: fixtures.Layer) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer.tar)) as t:
        return {m.name: m for m in t.getmembers()}


def read(layer: fixtures.Layer, path: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(layer.tar)) as t:
        return t.extractfile(path).read()


@pytest.mark.parametrize("name", sorted(fixtures.HAND_MADE))
@pytest.mark.parametrize("osv_set", golden.OSV_SETS)
@pytest.mark.parametrize("kind", golden.KINDS)
def test_oracle_still_gives_the_golden_findings(scan_fixtures, name, osv_set, kind):
    got = golden.compute(scan_fixtures[name].truth(), osv_set, kind)
    assert got == golden.load(osv_set, name, kind), \
        f"the oracle's findings for {name} ({kind}, {osv_set}) changed; if intended: python3 -m scanning.golden write"


@pytest.mark.parametrize("osv_set", golden.OSV_SETS)
@pytest.mark.parametrize("kind", golden.KINDS)
def test_oracle_on_the_debian_rootfs_gives_the_golden_pairs(debian_fixture, osv_set, kind):
    got = golden.compute(debian_fixture.truth(), osv_set, kind)
    want = golden.load(osv_set, "debian", kind)
    assert [tuple(x) for x in got["findings"]] == want["findings"]


def test_golden_files_cover_what_the_records_are_for():
    """The golden findings exercise every case the records were written for (so a change to
    fixtures cannot quietly drop one)."""
    def keys(name, kind="enhanced", osv_set="v1"):
        return {(f["id"], f["package"]) for f in golden.load(osv_set, name, kind)["findings"]}

    lang, layered, alpine, rpm = keys("languages"), keys("layered"), keys("alpine"), keys("rpm")
    assert ("CVE-2024-29041", "express") in lang           # last_affected equal to the version
    assert ("CVE-2022-24999", "qs") in lang                # several ranges; one of two installed versions
    assert ("CVE-2021-23337", "lodash") in lang            # explicit versions
    assert ("CVE-2026-40010", "zope.interface") in lang    # PyPI names normalised
    assert ("CVE-2020-36518", "com.fasterxml.jackson.core:jackson-databind") in lang  # jar in a war
    assert ("GO-2026-0006", "github.com/berth-fixtures/fork") in lang  # replaced module, no CVE
    assert not any(p == "github.com/berth-fixtures/orig" for _, p in lang)
    assert ("CVE-2023-45283", "stdlib") in lang
    assert not any(p == "rustapp" for _, p in lang)        # a local crate is not a crates.io one
    assert not any(p in ("gin", "rake", "urllib3") or p.endswith("/gin") for _, p in lang)  # fixed below
    # whiteouts, opaque directory, upgrade
    assert {p for _, p in layered} == {"libc6", "zlib1g", "tzdata", "urllib3", "PyYAML"}
    assert ("CVE-2026-20002", "ssl_client") in alpine and not any(p == "apk-tools" for _, p in alpine)
    assert {p for _, p in rpm} == {"openssl", "openssl-libs", "curl", "curl-minimal"}
    basic = {(f["id"], f["package"]) for f in golden.load("v1", "languages", "basic")["findings"]}
    assert basic and basic < lang and all(v.startswith("CVE-2026-100") for v, _ in basic)
    # v2: one finding fixed (by a version below the installed one), two new
    v1, v2 = keys("languages"), keys("languages", osv_set="v2")
    assert v1 - v2 == {("CVE-2023-32681", "requests")}
    assert v2 - v1 == {("CVE-2026-10100", "zlib1g"), ("CVE-2026-40100", "express")}
    for name in ("unsupported-amzn", "unsupported-bdb"):
        assert golden.load("v1", name, "basic")["findings"] == []


def test_debian_rootfs_is_real(debian_fixture):
    pkgs = debian_fixture.packages
    assert 80 <= len(pkgs) <= 130, len(pkgs)
    names = {p.name for p in pkgs}
    assert {"libc6", "bash", "coreutils", "dpkg", "apt", "zlib1g", "util-linux"} <= names
    assert {p.source_name for p in pkgs if p.name == "libc6"} == {"glibc"}
    assert 55 <= len({p.source_name for p in pkgs}) <= 90
    rel = read(debian_fixture.layers[0], "./usr/lib/os-release").decode()
    assert "ID=debian" in rel and 'VERSION_ID="12"' in rel


def test_rpm_database_is_read_back_by_rpm(scan_fixtures, tmp_path):
    fx = scan_fixtures["rpm"]
    (tmp_path / "rpmdb.sqlite").write_bytes(read(fx.layers[0], "var/lib/rpm/rpmdb.sqlite"))
    out = subprocess.run(["rpm", "--dbpath", str(tmp_path), "--define", "_db_backend sqlite", "-qa",
                          "--qf", "%{NAME} %{SOURCERPM}\\n"], capture_output=True, text=True, check=True).stdout
    assert sorted(out.split("\n")[:-1]) == sorted(
        f"{p.name} {p.source_name}-{p.version.split(':')[-1]}.src.rpm" for p in fx.packages)
    assert any(p.version.startswith("1:") for p in fx.packages)  # an epoch
    assert any(p.name != p.source_name for p in fx.packages)     # a subpackage


@pytest.mark.skipif(not shutil.which("go"), reason="go not installed (apt-get install golang-go)")
def test_go_binary_is_read_back_by_go(scan_fixtures, tmp_path):
    binary = tmp_path / "goapp"
    binary.write_bytes(read(scan_fixtures["languages"].layers[1], "usr/local/bin/goapp"))
    binary.chmod(0o755)  # `go version` skips files that are not executable
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0].endswith(": go1.21.3"), out
    assert "\tdep\tgolang.org/x/net\tv0.17.0\t" in out
    assert "\t=>\tgithub.com/berth-fixtures/fork\tv1.2.0\t" in out


def test_rust_binary_has_a_cargo_auditable_section(scan_fixtures, tmp_path):
    binary = tmp_path / "rustapp"
    binary.write_bytes(read(scan_fixtures["languages"].layers[1], "usr/local/bin/rustapp"))
    if shutil.which("readelf"):
        assert ".dep-v0" in subprocess.run(["readelf", "-S", str(binary)], capture_output=True, text=True,
                                           check=True).stdout
    data = binary.read_bytes()
    # Find the section by its header, as a reader would.
    shoff = int.from_bytes(data[0x28:0x30], "little")
    shnum, shstrndx = int.from_bytes(data[0x3C:0x3E], "little"), int.from_bytes(data[0x3E:0x40], "little")
    hdr = [data[shoff + 64 * i: shoff + 64 * (i + 1)] for i in range(shnum)]
    stroff = int.from_bytes(hdr[shstrndx][0x18:0x20], "little")

    def name(h):
        start = stroff + int.from_bytes(h[0:4], "little")
        return data[start:data.index(b"\0", start)].decode()
    sec = next(h for h in hdr if name(h) == ".dep-v0")
    off, size = int.from_bytes(sec[0x18:0x20], "little"), int.from_bytes(sec[0x20:0x28], "little")
    doc = json.loads(zlib.decompress(data[off:off + size]))
    crates = {(p["name"], p["version"], p["source"]) for p in doc["packages"]}
    assert ("smallvec", "1.6.0", "crates.io") in crates and ("rustapp", "0.1.0", "local") in crates


def test_go_buildinfo_layout():
    blob = elf.go_buildinfo_blob("go1.22.1", "path\tx\n")
    assert blob.startswith(b"\xff Go buildinf:") and blob[14] == 8 and blob[15] & 2
    assert blob[32] == len("go1.22.1") and blob[33:41] == b"go1.22.1"


def test_war_holds_a_jar_with_maven_metadata(scan_fixtures):
    war = read(scan_fixtures["languages"].layers[1], "opt/app/webapp.war")
    with zipfile.ZipFile(io.BytesIO(war)) as z:
        inner = z.read("WEB-INF/lib/jackson-databind-2.9.10.jar")
    with zipfile.ZipFile(io.BytesIO(inner)) as z:
        props = z.read("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties").decode()
    assert "version=2.9.10" in props


def test_layered_image_has_whiteouts_opaque_dir_and_three_compressions(scan_fixtures):
    fx = scan_fixtures["layered"]
    assert [layer.compression for layer in fx.layers] == ["gzip", "zstd", "none"]
    assert fx.layers[1].blob[:4] == b"\x28\xb5\x2f\xfd" and fx.layers[0].blob[:2] == b"\x1f\x8b"
    l1, l2 = members(fx.layers[1]), members(fx.layers[2])
    assert "srv/app/node_modules/.wh..wh..opq" in l1
    assert f"{fixtures.SITE}/.wh.requests-2.25.1.dist-info" in l1
    assert "usr/local/bin/.wh.gotool" in l2
    cfg = json.loads(fx.config())
    assert cfg["rootfs"]["diff_ids"] == [layer.diff_id for layer in fx.layers]


def test_index_has_two_platforms(scan_fixtures):
    idx = json.loads(scan_fixtures["index"].index())
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == ["amd64", "arm64"]
    arm = scan_fixtures["index"].children[1]
    assert json.loads(arm.config())["architecture"] == "arm64"


# -- comparators ------------------------------------------------------------------------------

def test_tool_comparators_order_known_pairs():
    assert oracle.dpkg_batch([("1:1.0", "2.0"), ("1.0~rc1", "1.0"), ("2.36-9+deb12u4", "2.36-9+deb12u10")]) == {
        ("1:1.0", "2.0"): 1, ("1.0~rc1", "1.0"): -1, ("2.36-9+deb12u4", "2.36-9+deb12u10"): -1}
    assert oracle.rpm_batch([("1:3.0.7-27.el9", "3.0.9-1.el9"), ("1.0~rc1-1", "1.0-1"), ("0:5-1", "5-1")]) == {
        ("1:3.0.7-27.el9", "3.0.9-1.el9"): 1, ("1.0~rc1-1", "1.0-1"): -1, ("0:5-1", "5-1"): 0}
    assert oracle.semver_batch([("1.0.0-rc.1", "1.0.0"), ("1.10.0", "1.9.0")]) == {
        ("1.0.0-rc.1", "1.0.0"): -1, ("1.10.0", "1.9.0"): 1}
    assert oracle.go_batch([("go1.21.3", "1.21.4"), ("v20.10.0+incompatible", "20.10.9+incompatible"),
                            ("go1.20", "1.20.0")]) == {
        ("go1.21.3", "1.21.4"): -1, ("v20.10.0+incompatible", "20.10.9+incompatible"): -1, ("go1.20", "1.20.0"): 0}
    assert oracle.pypi_batch([("2.10", "2.10.1"), ("1.0.post1", "1.0"), ("1.0rc1", "1.0")]) == {
        ("2.10", "2.10.1"): -1, ("1.0.post1", "1.0"): 1, ("1.0rc1", "1.0"): -1}
    assert oracle.maven_batch([("2.9.10", "2.9.10.8"), ("2.0-beta9", "2.0"), ("1.0", "1.0.0")]) == {
        ("2.9.10", "2.9.10.8"): -1, ("2.0-beta9", "2.0"): -1, ("1.0", "1.0.0"): 0}


@pytest.mark.parametrize("a, b, want", [
    ("1.2.4_git20230717-r4", "1.2.4_git20230717-r5", -1), ("1.3-r2", "1.3.1-r0", -1), ("1.36.1-r15", "1.36.1-r17", -1),
    ("2.14.0-r5", "2.14.0-r3", 1), ("1.0_rc1", "1.0", -1), ("1.0_p1", "1.0", 1), ("1.0a", "1.0", 1),
    ("1.0_alpha", "1.0_beta", -1), ("1.2.4_git20230717", "1.2.4", 1), ("1.10", "1.9", 1), ("3.1.4-r1", "3.1.4-r1", 0),
])
def test_apk_rule(a, b, want):
    assert oracle.apk_compare(a, b) == want and oracle.apk_compare(b, a) == -want


@pytest.mark.parametrize("a, b, want", [
    ("2.2.3", "2.2.3.1", -1), ("1.13.0", "1.13.4", -1), ("13.0.6", "12.3.3", 1), ("1.0", "1.0.0", 0),
    ("1.0.a", "1.0", -1), ("1.0.0.rc1", "1.0.0", -1), ("1.0-1", "1.0", -1), ("1.10", "1.9", 1),
])
def test_rubygems_rule_and_gem_version_agree(a, b, want):
    assert oracle.gem_compare(a, b) == want and oracle.gem_compare(b, a) == -want
    assert oracle.gem_batch([(a, b), (b, a)]) == {(a, b): want, (b, a): -want}


def test_osv_evaluation_rules():
    cmp = lambda a, b: oracle.semver_batch([(a, b)])[(a, b)]  # noqa: E731
    ev = lambda *e: {"ranges": [{"type": "SEMVER", "events": [dict([x]) for x in e]}]}  # noqa: E731
    assert oracle.affected_by("1.0.0", ev(("introduced", "0")), cmp)
    assert not oracle.affected_by("2.0.0", ev(("introduced", "0"), ("fixed", "2.0.0")), cmp)
    assert oracle.affected_by("2.0.0", ev(("introduced", "0"), ("last_affected", "2.0.0")), cmp)
    assert not oracle.affected_by("2.0.1", ev(("introduced", "0"), ("last_affected", "2.0.0")), cmp)
    assert not oracle.affected_by("1.5.0", ev(("introduced", "1.0.0"), ("fixed", "1.2.0"), ("introduced", "2.0.0")), cmp)
    assert oracle.affected_by("2.5.0", ev(("introduced", "2.0.0"), ("introduced", "1.0.0"), ("fixed", "1.2.0")), cmp)
    assert not oracle.affected_by("3.0.0", ev(("introduced", "0"), ("limit", "3.0.0")), cmp)
    assert oracle.affected_by("2.9.9", ev(("introduced", "0"), ("limit", "3.0.0")), cmp)
    assert oracle.affected_by("9.9.9", {"versions": ["9.9.9"]}, cmp)
    assert not oracle.affected_by("1.0.0", {"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}, cmp)


def test_cvss_scores():
    assert oracle.cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert oracle.cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == 10.0
    assert oracle.cvss3_score("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H") == 9.9
    assert oracle.cvss3_score("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:N") == 0.0
    assert oracle.cvss3_score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N") == 5.5
    assert oracle.cvss2_score("AV:N/AC:M/Au:N/C:P/I:P/A:P") == 6.8
    assert oracle.cvss2_score("AV:N/AC:L/Au:N/C:C/I:C/A:C") == 10.0
