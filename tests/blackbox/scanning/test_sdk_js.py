"""The scanning API through a third client, the AWS SDK for JavaScript v3 (`@aws-sdk/client-ecr`,
pinned in js/package.json and js/package-lock.json), besides boto3 and the aws CLI: the SDK signs
with SigV4 against a Berth that requires it, and js/scan.mjs uses the SDK's own
`waitUntilImageScanComplete` waiter and `paginateDescribeImageScanFindings` paginator. Findings
are compared with the oracle's; the SDK's deserializers (timestamps, nested enhanced shapes,
modelled exceptions) throw on anything they cannot read.

Needs node (18 or later) and npm (Debian: `apt-get install nodejs npm`); the SDK is installed once
per cache with `npm ci` into `$BERTH_SCAN_CACHE/js-sdk` (else a session temp dir)."""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from scanning.scanapi import (KEY, OSV_V1, SECRET, SCAN_TIMEOUT, all_findings, assert_same_findings, basic_config,
                              basic_triples, enhanced_triples, expected_findings, expected_triples, start)

JS = Path(__file__).parent / "js"
NPM_TIMEOUT = float(os.environ.get("BERTH_NPM_TIMEOUT", "300"))
# findingSeverityCounts is keyed by the model's FindingSeverity, which has no UNTRIAGED (an enhanced
# finding's severity): those are counted as UNDEFINED.
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNDEFINED")


@pytest.fixture(scope="session")
def sdk_dir(scan_cache) -> Path:
    """A directory with scan.mjs and node_modules (`npm ci` of js/package-lock.json), reused while
    the lock file is unchanged."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("the JavaScript SDK tests need node (18 or later) and npm: apt-get install nodejs npm "
                    f"(node: {node or 'missing'}, npm: {npm or 'missing'})")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        pytest.fail(f"node {version} is too old for @aws-sdk/client-ecr: 18 or later is needed")
    d = scan_cache / "js-sdk"
    d.mkdir(parents=True, exist_ok=True)
    lock = (JS / "package-lock.json").read_bytes()
    stamp = hashlib.sha256((JS / "package.json").read_bytes() + lock).hexdigest()
    with open(d / ".install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = d / "node_modules" / ".berth-installed"
        if not (done.exists() and done.read_text() == stamp):
            for name in ("package.json", "package-lock.json"):
                shutil.copy(JS / name, d / name)
            try:
                r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=d, capture_output=True, text=True,
                                   timeout=NPM_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"npm ci of @aws-sdk/client-ecr took more than {NPM_TIMEOUT:.0f}s")
            if r.returncode != 0:
                pytest.fail(f"npm ci of @aws-sdk/client-ecr failed ({r.returncode}):\n{r.stdout[-2000:]}\n"
                            f"{r.stderr[-4000:]}")
            done.write_text(stamp)
        shutil.copy(JS / "scan.mjs", d / "scan.mjs")
    return d


@pytest.fixture
def server(tmp_path, berth_only):
    # Not anonymous: every request, the SDK's included, must be signed with the administrator's key.
    srv = start(tmp_path, anonymous=False)
    srv.import_osv(OSV_V1)
    yield srv
    srv.stop()


def node(sdk_dir: Path, server, *args: str, key: str = KEY, secret: str = SECRET) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(BERTH_ENDPOINT=server.url, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=key,
               AWS_SECRET_ACCESS_KEY=secret, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               BERTH_SCAN_TEST_TIMEOUT=str(int(SCAN_TIMEOUT)))
    r = subprocess.run(["node", str(sdk_dir / "scan.mjs"), *args], cwd=sdk_dir, capture_output=True, text=True,
                       env=env, timeout=SCAN_TIMEOUT + 60)
    assert r.returncode == 0, f"node scan.mjs {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-4000:]}"
    return json.loads(r.stdout)


def iso(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_pages(out: dict, page_size: int, total: int) -> None:
    sizes = out["pageSizes"]
    assert sum(sizes) == total and all(n <= page_size for n in sizes), sizes
    assert len(sizes) >= -(-total // page_size), f"{total} findings in pages of {page_size}: {sizes}"


def check_counts(out: dict, findings: list[dict]) -> None:
    counts = out["findingSeverityCounts"]
    assert set(counts) <= set(SEVERITIES), counts
    listed = Counter("UNDEFINED" if f["severity"] == "UNTRIAGED" else f["severity"] for f in findings)
    assert {k: v for k, v in counts.items() if v} == dict(listed), counts


def test_basic_scan_on_push_through_the_js_sdk(server, sdk_dir, scan_fixtures):
    conf = node(sdk_dir, server, "configure", "BASIC", "js-basic/*")
    assert conf["scanningConfiguration"] == {"scanType": "BASIC", "rules": [
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "js-basic/*", "filterType": "WILDCARD"}]}]}
    assert conf["registryId"]
    ecr = server.ecr()
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == conf["scanningConfiguration"]
    ecr.create_repository(repositoryName="js-basic/alpine")
    fx = scan_fixtures["alpine"]
    digest = server.push("js-basic/alpine", fx)
    out = node(sdk_dir, server, "scan", "js-basic/alpine", digest, "2")
    assert out["waiter"] == {"state": "SUCCESS", "status": "COMPLETE"}, out["waiter"]
    assert out["status"] == "COMPLETE" and out["enhancedFindings"] == []
    want = expected_triples(expected_findings(fx, "basic"))
    assert_same_findings(basic_triples(out["findings"]), want, "alpine, scanned on push, read by the JS SDK")
    check_pages(out, 2, len(want))
    check_counts(out, out["findings"])
    assert out["dates"] >= 2 and iso(out["imageScanCompletedAt"]) and iso(out["vulnerabilitySourceUpdatedAt"])
    # The same findings as boto3 reads them.
    _, basic, _ = all_findings(ecr, "js-basic/alpine", digest)
    def canon(fs):
        return sorted(json.dumps(f, sort_keys=True) for f in fs)
    assert canon(basic) == canon(out["findings"])


def test_start_image_scan_through_the_js_sdk(server, sdk_dir, scan_fixtures):
    ecr = server.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="js-manual/languages")
    fx = scan_fixtures["languages"]
    digest = server.push("js-manual/languages", fx)
    out = node(sdk_dir, server, "scan", "js-manual/languages", digest, "1", "start")
    assert out["start"]["status"] in ("IN_PROGRESS", "COMPLETE", "PENDING"), out["start"]
    assert out["start"]["imageId"]["imageDigest"] == digest and out["start"]["repositoryName"] == "js-manual/languages"
    assert out["waiter"] == {"state": "SUCCESS", "status": "COMPLETE"}, out["waiter"]
    want = expected_triples(expected_findings(fx, "basic"))
    assert_same_findings(basic_triples(out["findings"]), want, "languages, StartImageScan by the JS SDK")
    check_pages(out, 1, len(want))
    check_counts(out, out["findings"])


def test_enhanced_findings_deserialize_in_the_js_sdk(server, sdk_dir, scan_fixtures):
    conf = node(sdk_dir, server, "configure", "ENHANCED", "js-enhanced/*")
    assert conf["scanningConfiguration"]["scanType"] == "ENHANCED", conf
    ecr = server.ecr()
    ecr.create_repository(repositoryName="js-enhanced/languages")
    fx = scan_fixtures["languages"]
    digest = server.push("js-enhanced/languages", fx)
    out = node(sdk_dir, server, "scan", "js-enhanced/languages", digest, "4")
    assert out["waiter"] == {"state": "SUCCESS", "status": "COMPLETE"}, out["waiter"]
    enhanced = out["enhancedFindings"]
    assert enhanced and out["findings"] == []
    found = expected_findings(fx, "enhanced")
    want = expected_triples(found)
    assert_same_findings(enhanced_triples(enhanced, {f["version"] for f in found}), want,
                         "languages, enhanced scan on push, read by the JS SDK")
    check_pages(out, 4, len(enhanced))
    check_counts(out, enhanced)
    # Each finding's timestamps became Dates (printed back as ISO strings), its nested shapes objects.
    assert out["dates"] >= 2 * len(enhanced), out["dates"]
    for f in enhanced:
        assert iso(f["firstObservedAt"]) <= iso(f["lastObservedAt"]), f
        assert f["type"] == "PACKAGE_VULNERABILITY" and f["status"] == "ACTIVE", f
        image = f["resources"][0]["details"]["awsEcrContainerImage"]
        assert image["imageHash"] == digest and image["repositoryName"] == "js-enhanced/languages", image
        if "pushedAt" in image:
            iso(image["pushedAt"])
        for vp in f["packageVulnerabilityDetails"]["vulnerablePackages"]:
            assert vp["name"] and vp["version"] and vp["sourceLayerHash"], vp
    # boto3 reads the same findings.
    _, _, boto = all_findings(ecr, "js-enhanced/languages", digest)
    assert sorted(f["findingArn"] for f in boto) == sorted(f["findingArn"] for f in enhanced)


def test_js_sdk_errors(server, sdk_dir):
    ecr = server.ecr()
    ecr.create_repository(repositoryName="js-errors/app")
    missing = "sha256:" + "0" * 64
    out = node(sdk_dir, server, "describe", "js-errors/app", missing)
    assert not out["ok"] and out["name"] == "ImageNotFoundException", out
    assert out["isModelledException"] and out["fault"] == "client" and out["httpStatusCode"] == 400, out
    assert out["message"], out
    # A wrong secret: Berth checks the SDK's signature.
    out = node(sdk_dir, server, "describe", "js-errors/app", missing, secret="not-the-secret")
    assert not out["ok"] and out["name"] == "InvalidSignatureException" and out["httpStatusCode"] == 403, out
