"""Golden files: the oracle's findings for every fixture, checked in.

`golden/<osv set>/<fixture>.<basic|enhanced>.json` holds, for the hand-made fixtures, the full
findings (vulnerability, package, version, manager, layer, severity, CVSS v3). For `debian`,
whose package versions move with Debian's point releases, it holds (vulnerability, package)
only, and the versions are those dpkg-query reads from the root filesystem at test time.

Rule for the Debian records (osv/*/DEBIAN-*, DSA-*): each one's answer for bookworm depends only
on what a stable release does not change: epochs (`fixed: 2:0`, `1:0`), upstream versions
(coreutils 9.1, tar 1.34, bash 5.2, gnutls 3.7), bounds far in the future (`fixed: 2099a`,
`limit: 99:0`), bounds that point releases only move away from (glibc `deb12u7`, below what
bookworm already ships), and one explicit version of a package that has not changed since
bookworm's release (dash 0.5.12-2).

Write them again (after changing fixtures or records) with

    cd tests/blackbox && python3 -m scanning.golden write [FIXTURES_CACHE_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scanning import oracle

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
OSV = HERE / "osv"
OSV_SETS = ("v1", "v2")
KINDS = ("basic", "enhanced")
VERSIONLESS = ("debian",)

HEADER = {
    "hand-made": "Findings of the oracle (scanning/oracle.py) for this fixture and OSV set; "
                 "a scanner must report exactly these (vulnerability, package, version) triples.",
    "debian": "Findings of the oracle for the mmdebstrap root filesystem, as (vulnerability, package): "
              "package versions move with Debian point releases and come from dpkg-query at test time; "
              "every Debian record's answer depends only on what a stable release does not change "
              "(see scanning/golden.py).",
}


def path_for(osv_set: str, fixture: str, kind: str) -> Path:
    return GOLDEN / osv_set / f"{fixture}.{kind}.json"


def render(fixture: str, findings: list[dict]) -> dict:
    if fixture in VERSIONLESS:
        return {"rule": HEADER["debian"],
                "findings": sorted({(f["id"], f["package"]) for f in findings})}
    return {"rule": HEADER["hand-made"],
            "findings": [{k: f[k] for k in ("id", "package", "version", "manager", "layer", "severity")}
                         | ({"cvss3": f["cvss3"]} if "cvss3" in f else {}) for f in findings]}


def compute(truth: dict, osv_set: str, kind: str) -> dict:
    return render(truth["name"], oracle.expected(truth, oracle.load_osv(OSV / osv_set), kind))


def load(osv_set: str, fixture: str, kind: str) -> dict:
    data = json.loads(path_for(osv_set, fixture, kind).read_text())
    if fixture in VERSIONLESS:
        data["findings"] = [tuple(x) for x in data["findings"]]
    return data


def dump(doc: dict) -> str:
    """One finding per line, so that a change shows as a one-line diff."""
    rows = ",\n".join("  " + json.dumps(f, separators=(", ", ": ")) for f in doc["findings"])
    return (f'{{\n "rule": {json.dumps(doc["rule"])},\n "findings": [\n{rows}\n ]\n}}\n' if rows
            else f'{{\n "rule": {json.dumps(doc["rule"])},\n "findings": []\n}}\n')


def write_all(truths: dict[str, dict]) -> list[Path]:
    written = []
    for osv_set in OSV_SETS:
        for name, truth in truths.items():
            for kind in KINDS:
                p = path_for(osv_set, name, kind)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(dump(compute(truth, osv_set, kind)))
                written.append(p)
    return written


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "write":
        print("usage: python3 -m scanning.golden write [FIXTURES_CACHE_DIR]", file=sys.stderr)
        return 2
    import tempfile  # noqa: PLC0415

    from scanning import fixtures  # noqa: PLC0415
    cache = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="berth-scan-"))
    built = fixtures.build_all(cache, log=lambda m: print(m, file=sys.stderr))
    for p in write_all({name: fx.truth() for name, fx in built.items()}):
        print(p, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
