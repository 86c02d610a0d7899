"""The reference matcher: which findings a correct scanner reports for a fixture.

Written from the OSV schema (ossf/osv-schema `docs/schema.md`, "Evaluation"), independently of
Berth's matcher, and comparing versions with the ecosystems' own tools wherever one is
installed:

| ecosystem           | comparator                                                           |
|---------------------|----------------------------------------------------------------------|
| Debian              | `dpkg --compare-versions` (tool)                                     |
| Rocky / AlmaLinux   | rpm's `rpm.vercmp` through `rpm --eval '%{lua: ...}'`, batched (tool) |
| PyPI                | `packaging.version.Version` (PyPA's implementation of PEP 440)       |
| npm, crates.io      | npm's bundled `semver` package (node), batched (tool)                |
| Go                  | npm's `semver` after Go's spelling is undone: no `v`, no             |
|                     | `+incompatible`, `go1.21` -> `1.21.0` for the toolchain (tool + rule) |
| Maven               | Maven's own `ComparableVersion` (maven-artifact jar, java), batched   |
| Alpine              | rule below (`apk_compare`), from apk's version format                |
| RubyGems            | Ruby's own `Gem::Version` (ruby), batched (tool); `gem_compare` below |
|                     | is the same order written out, checked against it in the tests       |

Matching rules (stated here because a finding is only as right as they are):

* A record with `withdrawn` is ignored. `GIT` ranges are ignored.
* The OS ecosystem comes from os-release: debian N -> `Debian:N`, alpine X.Y.Z ->
  `Alpine:vX.Y`, rocky N.M -> `Rocky Linux:N`, almalinux N.M -> `AlmaLinux:N`; any other OS
  has none (UNSUPPORTED_IMAGE).
* OS packages are looked up by their source: Debian `Source:` (else the binary name), Alpine
  origin, rpm source RPM name. Debian compares the *source* version (a binNMU's `+bN` is not in
  Debian's records); Alpine and rpm compare the package's own version (`[epoch:]v-r` for rpm).
* Language packages are looked up by name in their ecosystem; PyPI names are compared after
  PEP 503 normalisation on both sides.
* A version is affected if it equals a string of `versions`, or some range's events, sorted
  with the comparator ("0" first), leave it affected (`introduced` <= v, not `fixed` <= v,
  not `last_affected` < v), and v is below one of the range's `limit`s if it has any.
* A finding is (vulnerability, package name, package version), where the vulnerability is the
  record's id if it is a CVE, else the first CVE of `upstream`, then of `aliases`, else the
  record's id. Findings are deduplicated on that triple.
* Severity: the distribution's rating (Debian urgency: unimportant -> INFORMATIONAL,
  low/medium/high) first, else the CVSS v3 base score (then v2; v4 vectors are not scored
  here and no record relies on one), <4 LOW, <7 MEDIUM, <9 HIGH, else CRITICAL; none ->
  UNDEFINED.

Usage: `expected(fixture_truth, osv_dir, scan_type)` -> sorted list of finding dicts;
`python3 -m scanning.oracle FIXTURES_DIR OSV_DIR` prints them for every fixture.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

LANGUAGE_ECOSYSTEM = {"PYTHONPKG": "PyPI", "NODEPKG": "npm", "GOBINARY": "Go", "CARGO": "crates.io",
                      "JAR": "Maven", "GEMSPEC": "RubyGems"}
MAVEN_JAR = os.environ.get("BERTH_MAVEN_ARTIFACT_JAR", "/usr/share/java/maven-artifact-3.x.jar")


# ---------------------------------------------------------------------------------------------
# comparators: each takes a list of (a, b) pairs and returns {(a, b): -1|0|1}
# ---------------------------------------------------------------------------------------------


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def dpkg_batch(pairs):
    out = {}
    for a, b in pairs:
        # dpkg answers one relation per run: "lt", then "eq".
        if subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0:
            out[(a, b)] = -1
        elif subprocess.run(["dpkg", "--compare-versions", a, "eq", b]).returncode == 0:
            out[(a, b)] = 0
        else:
            out[(a, b)] = 1
    return out


def rpm_batch(pairs):
    pairs = list(pairs)
    if not pairs:
        return {}
    for a, b in pairs:
        assert '"' not in a + b and "\\" not in a + b and "}" not in a + b, (a, b)
    table = ",".join(f'{{"{a}","{b}"}}' for a, b in pairs)
    lua = f"%{{lua: for _, p in ipairs({{{table}}}) do print(rpm.vercmp(p[1], p[2]) .. \"\\n\") end}}"
    r = subprocess.run(["rpm", "--eval", lua], capture_output=True, text=True, check=True)
    results = [int(x) for x in r.stdout.split()]
    assert len(results) == len(pairs), r.stdout
    return {p: sign(v) for p, v in zip(pairs, results)}


@functools.lru_cache(maxsize=1)
def semver_module() -> str:
    """The `semver` package bundled with npm (or BERTH_SEMVER_DIR)."""
    candidates = [os.environ.get("BERTH_SEMVER_DIR", "")]
    npm = shutil.which("npm")
    if npm:
        root = Path(os.path.realpath(npm)).parent.parent
        candidates.append(str(root / "node_modules" / "semver"))
    candidates += ["/usr/lib/node_modules/npm/node_modules/semver", "/usr/share/nodejs/semver",
                   "/usr/local/lib/node_modules/npm/node_modules/semver"]
    for c in candidates:
        if c and (Path(c) / "package.json").exists():
            return c
    raise RuntimeError("npm's semver package not found (install nodejs and npm, or set BERTH_SEMVER_DIR)")


SEMVER_SCRIPT = """
const semver = require(process.argv[1]);
const pairs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(pairs.map(([a, b]) => semver.compare(new semver.SemVer(a), new semver.SemVer(b)))));
"""


def semver_batch(pairs):
    pairs = list(pairs)
    if not pairs:
        return {}
    r = subprocess.run(["node", "-e", SEMVER_SCRIPT, semver_module()], input=json.dumps(pairs),
                       capture_output=True, text=True, check=True)
    return {p: sign(v) for p, v in zip(pairs, json.loads(r.stdout))}


def go_to_semver(v: str) -> str:
    """Go spells versions `v1.2.3`, `v2.0.0+incompatible`, and the toolchain `go1.21` or
    `go1.21.3`; OSV's Go records write `1.2.3`."""
    if v.startswith("go"):
        v = v[2:]
        parts = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?(.*)$", v)
        if parts:
            major, minor, patch, rest = parts.groups()
            if rest and not rest.startswith("-"):
                rest = "-" + rest  # go1.21rc2 -> 1.21.0-rc2
            v = f"{major}.{minor}.{patch or 0}{rest}"
    v = v.removeprefix("v").replace("+incompatible", "")
    return v


def go_batch(pairs):
    pairs = list(pairs)
    conv = [(go_to_semver(a), go_to_semver(b)) for a, b in pairs]
    res = semver_batch(conv)
    return {p: res[c] for p, c in zip(pairs, conv)}


def pypi_batch(pairs):
    return {(a, b): sign((Version(a) > Version(b)) - (Version(a) < Version(b))) for a, b in pairs}


def maven_batch(pairs):
    pairs = list(pairs)
    if not pairs:
        return {}
    if not Path(MAVEN_JAR).exists():
        raise RuntimeError(f"{MAVEN_JAR} not found (apt-get install libmaven3-core-java default-jre-headless)")
    args = [x for p in pairs for x in p]
    r = subprocess.run(["java", "-cp", MAVEN_JAR, "org.apache.maven.artifact.versioning.ComparableVersion", *args],
                       capture_output=True, text=True, check=True)
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("   ")]
    assert len(lines) == len(args) - 1, r.stdout
    out = {}
    for i, (a, b) in enumerate(pairs):
        line = lines[2 * i]
        op = line[len(a) + 1:].split(" ")[0]
        assert line.startswith(a + " ") and line.endswith(" " + b), (line, a, b)
        out[(a, b)] = {"<": -1, "==": 0, ">": 1}[op]
    return out


APK_SUFFIXES = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "": 0, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}
APK_RE = re.compile(r"^(\d+(?:\.\d+)*)([a-z]?)((?:_[a-z]+\d*)*)(?:-r(\d+))?$")


def apk_key(v: str):
    m = APK_RE.match(v)
    if not m:
        raise ValueError(f"not an apk version: {v}")
    numbers, letter, suffixes, rev = m.groups()
    sfx = [(APK_SUFFIXES[s.rstrip("0123456789")], int(s.lstrip("abcdefghijklmnopqrstuvwxyz") or 0))
           for s in suffixes.split("_")[1:]]
    return [int(x) for x in numbers.split(".")], letter, sfx, int(rev or 0)


def apk_compare(a: str, b: str) -> int:
    """apk's order, for versions `N(.N)*[a-z](_suffixN)*(-rN)`: the numbers one by one (a
    version with more numbers is greater when the others agree), then the letter, then the
    suffixes (_alpha < _beta < _pre < _rc < none < _cvs < _svn < _git < _hg < _p, each with its
    number), then the revision."""
    na, la, sa, ra = apk_key(a)
    nb, lb, sb, rb = apk_key(b)
    if na != nb:
        return sign((na > nb) - (na < nb))
    if la != lb:
        return -1 if la < lb else 1
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else (0, 0)
        y = sb[i] if i < len(sb) else (0, 0)
        if x != y:
            return -1 if x < y else 1
    return sign(ra - rb)


def gem_segments(v: str):
    v = v.strip().replace("-", ".pre.")
    segs = [int(s) if s.isdigit() else s for s in re.findall(r"[0-9]+|[a-z]+", v, re.I)]
    # Gem::Version#canonical_segments drops trailing zeros of the release part.
    first_str = next((i for i, s in enumerate(segs) if isinstance(s, str)), len(segs))
    release, pre = segs[:first_str], segs[first_str:]
    while release and release[-1] == 0:
        release.pop()
    return release + pre


def gem_compare(a: str, b: str) -> int:
    """Gem::Version's order: segments (runs of digits or letters) compared one by one, a
    missing one counting as 0; numbers by value, strings lexically; a string (a prerelease)
    is below any number."""
    x, y = gem_segments(a), gem_segments(b)
    for i in range(max(len(x), len(y))):
        p = x[i] if i < len(x) else 0
        q = y[i] if i < len(y) else 0
        if p == q:
            continue
        if isinstance(p, str) and isinstance(q, int):
            return -1
        if isinstance(p, int) and isinstance(q, str):
            return 1
        return -1 if p < q else 1
    return 0


RUBY_SCRIPT = """
require 'json'
pairs = JSON.parse(STDIN.read)
puts JSON.generate(pairs.map { |a, b| Gem::Version.new(a) <=> Gem::Version.new(b) })
"""


def gem_batch(pairs):
    pairs = list(pairs)
    if not pairs:
        return {}
    if not shutil.which("ruby"):
        raise RuntimeError("ruby not found (apt-get install ruby): RubyGems versions are compared by Gem::Version")
    r = subprocess.run(["ruby", "-e", RUBY_SCRIPT], input=json.dumps(pairs), capture_output=True, text=True,
                       check=True)
    return {p: sign(v) for p, v in zip(pairs, json.loads(r.stdout))}


def rule_batch(fn):
    return lambda pairs: {(a, b): fn(a, b) for a, b in pairs}


def comparator_for(ecosystem: str):
    base = ecosystem.split(":")[0]
    return {"Debian": dpkg_batch, "Rocky Linux": rpm_batch, "AlmaLinux": rpm_batch, "PyPI": pypi_batch,
            "npm": semver_batch, "crates.io": semver_batch, "Go": go_batch, "Maven": maven_batch,
            "Alpine": rule_batch(apk_compare), "RubyGems": gem_batch}[base]


# ---------------------------------------------------------------------------------------------
# OSV evaluation
# ---------------------------------------------------------------------------------------------


def load_osv(directory: Path) -> list[dict]:
    recs = []
    for p in sorted(Path(directory).glob("*.json")):
        rec = json.loads(p.read_text())
        if not rec.get("withdrawn"):
            recs.append(rec)
    return recs


def os_ecosystem(os_id: str | None, version_id: str | None) -> str | None:
    if not os_id or not version_id:
        return None
    parts = version_id.split(".")
    return {"debian": f"Debian:{parts[0]}", "alpine": f"Alpine:v{'.'.join(parts[:2])}",
            "rocky": f"Rocky Linux:{parts[0]}", "almalinux": f"AlmaLinux:{parts[0]}"}.get(os_id)


def lookup(pkg: dict, os_eco: str | None) -> tuple[str, str, str] | None:
    """(ecosystem, name to look up, version to compare) of a package, or None."""
    if pkg["manager"] == "OS":
        if os_eco is None:
            return None
        if os_eco.startswith("Debian:"):
            return os_eco, pkg["source_name"] or pkg["name"], pkg["source_version"] or pkg["version"]
        return os_eco, pkg["source_name"] or pkg["name"], pkg["version"]
    return LANGUAGE_ECOSYSTEM[pkg["manager"]], pkg["name"], pkg["version"]


def same_name(ecosystem: str, a: str, b: str) -> bool:
    if ecosystem == "PyPI":
        return canonicalize_name(a) == canonicalize_name(b)
    return a == b


def events_of(rng: dict) -> list[tuple[str, str]]:
    return [next(iter(e.items())) for e in rng.get("events", [])]


def needed_pairs(v: str, affected: dict) -> set[tuple[str, str]]:
    pairs = set()
    for rng in affected.get("ranges", []):
        if rng.get("type") == "GIT":
            continue
        vals = [val for _, val in events_of(rng) if val != "0" and "*" not in val]
        pairs |= {(v, x) for x in vals}
        pairs |= {(x, y) for x in vals for y in vals if x != y}
    return pairs


def affected_by(v: str, affected: dict, cmp) -> bool:
    if v in affected.get("versions", []):
        return True
    for rng in affected.get("ranges", []):
        if rng.get("type") == "GIT":
            continue
        events = events_of(rng)
        limits = [val for kind, val in events if kind == "limit"]
        if limits and not any("*" in lim or cmp(v, lim) < 0 for lim in limits):
            continue

        def key(ev):
            return functools.cmp_to_key(lambda a, b: -1 if a[1] == "0" and b[1] != "0" else
                                        1 if b[1] == "0" and a[1] != "0" else
                                        0 if a[1] == b[1] else cmp(a[1], b[1]))(ev)
        vulnerable = False
        for kind, val in sorted([e for e in events if e[0] != "limit"], key=key):
            if kind == "introduced" and (val == "0" or cmp(v, val) >= 0):
                vulnerable = True
            elif kind == "fixed" and cmp(v, val) >= 0:
                vulnerable = False
            elif kind == "last_affected" and cmp(v, val) > 0:
                vulnerable = False
        if vulnerable:
            return True
    return False


def vulnerability_id(rec: dict) -> str:
    if rec["id"].startswith("CVE-"):
        return rec["id"]
    for ident in rec.get("upstream", []) + rec.get("aliases", []):
        if ident.startswith("CVE-"):
            return ident
    return rec["id"]


# ---------------------------------------------------------------------------------------------
# severity
# ---------------------------------------------------------------------------------------------

V3 = {"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}, "AC": {"L": 0.77, "H": 0.44},
      "UI": {"N": 0.85, "R": 0.62}, "C": {"H": 0.56, "L": 0.22, "N": 0.0}}


def roundup(x: float) -> float:
    i = round(x * 100000)
    return i / 100000.0 if i % 10000 == 0 else (math.floor(i / 10000) + 1) / 10.0


def cvss3_score(vector: str) -> float:
    """CVSS v3.x base score (the FIRST specification's formulas)."""
    m = dict(part.split(":") for part in vector.split("/")[1:])
    changed = m["S"] == "C"
    pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}[m["PR"]]
    iss = 1 - (1 - V3["C"][m["C"]]) * (1 - V3["C"][m["I"]]) * (1 - V3["C"][m["A"]])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    expl = 8.22 * V3["AV"][m["AV"]] * V3["AC"][m["AC"]] * pr * V3["UI"][m["UI"]]
    if impact <= 0:
        return 0.0
    return roundup(min(1.08 * (impact + expl), 10)) if changed else roundup(min(impact + expl, 10))


def cvss2_score(vector: str) -> float:
    m = dict(part.split(":") for part in vector.split("/"))
    av = {"L": 0.395, "A": 0.646, "N": 1.0}[m["AV"]]
    ac = {"H": 0.35, "M": 0.61, "L": 0.71}[m["AC"]]
    au = {"M": 0.45, "S": 0.56, "N": 0.704}[m["Au"]]
    cia = {"N": 0.0, "P": 0.275, "C": 0.660}
    impact = 10.41 * (1 - (1 - cia[m["C"]]) * (1 - cia[m["I"]]) * (1 - cia[m["A"]]))
    expl = 20 * av * ac * au
    f = 0 if impact == 0 else 1.176
    return round(((0.6 * impact) + (0.4 * expl) - 1.5) * f, 1)


def band(score: float) -> str:
    return "LOW" if score < 4 else "MEDIUM" if score < 7 else "HIGH" if score < 9 else "CRITICAL"


def scores(rec: dict) -> dict[str, tuple[str, float]]:
    out = {}
    for s in rec.get("severity", []):
        if s["type"] == "CVSS_V3":
            out["CVSS3"] = (s["score"], cvss3_score(s["score"]))
        elif s["type"] == "CVSS_V2":
            out["CVSS2"] = (s["score"], cvss2_score(s["score"]))
    return out


def severity(rec: dict, affected: dict) -> str:
    urgency = (affected.get("ecosystem_specific") or {}).get("urgency", "")
    mapped = {"unimportant": "INFORMATIONAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH"}.get(
        urgency.replace("*", "").strip())
    if mapped:
        return mapped
    sc = scores(rec)
    if "CVSS3" in sc:
        return band(sc["CVSS3"][1])
    if "CVSS2" in sc:
        return band(sc["CVSS2"][1])
    return "UNDEFINED"


# ---------------------------------------------------------------------------------------------
# the expected findings
# ---------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    pkg: dict
    eco: str
    version: str
    rec: dict
    affected: dict


def expected(truth: dict, records: list[dict], scan_type: str) -> list[dict]:
    """The findings of a basic (OS packages) or enhanced (all packages) scan of one image."""
    assert scan_type in ("basic", "enhanced")
    if truth.get("children"):
        union = {}
        for child in truth["children"]:
            for f in expected(child, records, scan_type):
                union.setdefault((f["id"], f["package"], f["version"]), f)
        return [union[k] for k in sorted(union)]
    if truth.get("status", "COMPLETE") != "COMPLETE":
        return []
    os_eco = os_ecosystem(truth["os"]["id"], truth["os"]["version_id"])
    cands: list[Candidate] = []
    for pkg in truth["packages"]:
        if scan_type == "basic" and pkg["manager"] != "OS":
            continue
        look = lookup(pkg, os_eco)
        if look is None:
            continue
        eco, name, version = look
        for rec in records:
            for aff in rec.get("affected", []):
                p = aff.get("package", {})
                if p.get("ecosystem") == eco and same_name(eco, p.get("name", ""), name):
                    cands.append(Candidate(pkg, eco, version, rec, aff))
    # Every comparison the evaluation may ask for, answered by the tools in one batch each.
    by_eco: dict[str, set] = {}
    for c in cands:
        by_eco.setdefault(c.eco, set()).update(needed_pairs(c.version, c.affected))
    results: dict[tuple[str, str], int] = {}
    for eco, pairs in by_eco.items():
        results.update(comparator_for(eco)(sorted(pairs)))

    def cmp(a: str, b: str) -> int:
        return 0 if a == b else results[(a, b)]

    found: dict[tuple[str, str, str], dict] = {}
    for c in cands:
        if not affected_by(c.version, c.affected, cmp):
            continue
        vid = vulnerability_id(c.rec)
        key = (vid, c.pkg["name"], c.pkg["version"])
        sc = scores(c.rec)
        finding = {"id": vid, "package": c.pkg["name"], "version": c.pkg["version"], "manager": c.pkg["manager"],
                   "ecosystem": c.eco, "layer": c.pkg.get("layer", 0), "severity": severity(c.rec, c.affected),
                   "records": [c.rec["id"]]}
        if "CVSS3" in sc:
            finding["cvss3"] = {"vector": sc["CVSS3"][0], "score": sc["CVSS3"][1]}
        if key in found:
            found[key]["records"] = sorted(set(found[key]["records"]) | {c.rec["id"]})
        else:
            found[key] = finding
    return [found[k] for k in sorted(found)]


def finding_keys(findings) -> set[tuple[str, str, str]]:
    return {(f["id"], f["package"], f["version"]) for f in findings}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m scanning.oracle FIXTURES_DIR OSV_DIR", file=sys.stderr)
        return 2
    records = load_osv(Path(argv[1]))
    for truth_file in sorted(Path(argv[0]).glob("*/truth.json")):
        truth = json.loads(truth_file.read_text())
        for kind in ("basic", "enhanced"):
            for f in expected(truth, records, kind):
                print(f"{truth['name']}\t{kind}\t{f['id']}\t{f['package']}\t{f['version']}\t{f['severity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
