"""Helpers of the scanning API tests: a Berth with administrator credentials, `berth admin`,
pushing fixtures through /v2, waiting for scans, collecting findings page by page, and
comparing them with the oracle's.

The contract these helpers assume (issue 12):

* `berth admin --data DIR vulndb import PATH...` prints a JSON summary
  (`advisories`, `withdrawn_skipped`, `source_updated_at`, ...); `vulndb status` prints
  `{"loaded": true, "advisories": N, "source_updated_at": ...}` or `{"loaded": false}`;
  `scan stats` prints `{"layer_reads": N, ...}`; `sbom --repository R --digest D
  [--format cyclonedx]` prints CycloneDX 1.5 JSON.
* ECR's scanning operations, with the statuses IN_PROGRESS, COMPLETE, FAILED, UNSUPPORTED_IMAGE
  and FINDINGS_UNAVAILABLE.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import spawn_berth
from scanning import fixtures, golden, oracle
from tools.berth import backend_env, berth_binary, secured_env

KEY, SECRET = "AKIABERTHSCANNING001", "berth-scanning-admin-secret"
OSV_V1, OSV_V2 = golden.OSV / "v1", golden.OSV / "v2"
SCAN_TIMEOUT = float(os.environ.get("BERTH_SCAN_TEST_TIMEOUT", "90"))
WAITING = ("IN_PROGRESS", "PENDING")


class Server:
    def __init__(self, proc, data: Path, env: dict[str, str], anonymous: bool):
        self.proc, self.data, self.env, self.anonymous = proc, data, env, anonymous

    @property
    def url(self) -> str:
        return self.proc.url

    def restart(self) -> None:
        self.proc = spawn_berth(self.data, env=self.env, anonymous=self.anonymous)

    def stop(self) -> None:
        self.proc.stop()

    # -- clients ------------------------------------------------------------------------------

    def ecr(self, key: str = KEY, secret: str = SECRET, validate: bool = True):
        return boto3.client("ecr", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=Config(retries={"total_max_attempts": 1}, parameter_validation=validate))

    def aws(self, *args: str, key: str = KEY, secret: str = SECRET, timeout: float = 120):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        r = subprocess.run(["aws", "ecr", *args, "--endpoint-url", self.url, "--output", "json"],
                           capture_output=True, text=True, timeout=timeout, env=env)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr

    def admin(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        env = backend_env(self.data, {k: v for k, v in self.env.items()})
        r = subprocess.run([berth_binary(), "admin", "--data", str(self.data), *args], capture_output=True,
                           text=True, timeout=timeout, env=env)
        if check:
            assert r.returncode == 0, f"berth admin {' '.join(args)} failed ({r.returncode}): {r.stderr}"
        return r

    def admin_json(self, *args: str) -> dict:
        out = self.admin(*args).stdout
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(f"berth admin {' '.join(args)} did not print JSON: {out!r}") from None

    def import_osv(self, *paths) -> dict:
        return self.admin_json("vulndb", "import", *map(str, paths))

    def layer_reads(self) -> int:
        return int(self.admin_json("scan", "stats")["layer_reads"])

    # -- /v2 ----------------------------------------------------------------------------------

    def auth(self, key: str = KEY, secret: str = SECRET):
        if self.anonymous:
            return None
        import base64  # noqa: PLC0415
        data = self.ecr(key, secret).get_authorization_token()["authorizationData"][0]
        return tuple(base64.b64decode(data["authorizationToken"]).decode().split(":", 1))

    def push_blob(self, repo: str, blob: bytes, auth) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        if requests.head(f"{self.url}/v2/{repo}/blobs/{digest}", auth=auth, timeout=30).status_code == 200:
            return digest
        r = requests.post(f"{self.url}/v2/{repo}/blobs/uploads/?digest={digest}", data=blob, auth=auth,
                          timeout=300, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, (r.status_code, r.text[:500])
        return digest

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str, auth) -> str:
        r = requests.put(f"{self.url}/v2/{repo}/manifests/{ref}", data=body, auth=auth, timeout=60,
                         headers={"Content-Type": media_type})
        assert r.status_code == 201, (r.status_code, r.text[:500])
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def push(self, repo: str, fixture: fixtures.Fixture, tag: str | None = "latest", auth=None) -> str:
        """Pushes the fixture (an index: its images by digest, then the index); returns the
        digest of what the tag names."""
        auth = auth if auth is not None else self.auth()
        for img in fixture.children or [fixture]:
            for layer in img.layers:
                self.push_blob(repo, layer.blob, auth)
            self.push_blob(repo, img.config(), auth)
            if fixture.children:
                self.push_manifest(repo, img.digest, img.manifest(), fixtures.MT_MANIFEST, auth)
        body, mt = fixture.top()
        return self.push_manifest(repo, tag or fixture.digest, body, mt, auth)


def start(tmp_path: Path, *, anonymous: bool = True, name: str = "data", prepare=None, **env_extra) -> Server:
    """Berth on `tmp_path/name` with the administrator key; `prepare(server)` runs first (e.g.
    `berth admin` commands before the server is up)."""
    env = secured_env(KEY, SECRET)
    env["BERTH_CREATE_ON_PUSH"] = "true"
    env.update(env_extra)
    data = tmp_path / name
    srv = Server(None, data, env, anonymous)
    if prepare:
        prepare(srv)
    srv.proc = spawn_berth(data, env=env, anonymous=anonymous)
    return srv


def basic_config(ecr, rules=()):
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=list(rules))


def enhanced_config(ecr, frequency: str = "SCAN_ON_PUSH", filt: str = "*"):
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[
        {"scanFrequency": frequency, "repositoryFilters": [{"filter": filt, "filterType": "WILDCARD"}]}])


# ---------------------------------------------------------------------------------------------
# scans and findings
# ---------------------------------------------------------------------------------------------


def error_code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def describe(ecr, repo: str, digest: str, **kw) -> dict:
    return ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest}, **kw)


def wait_scan(ecr, repo: str, digest: str, *, timeout: float = SCAN_TIMEOUT, started: bool = True,
              until=lambda r: r["imageScanStatus"]["status"] not in WAITING) -> dict:
    """Polls DescribeImageScanFindings until `until(response)`; a ScanNotFoundException counts as
    "not started yet" unless `started`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = describe(ecr, repo, digest)
            if until(last):
                return last
        except ClientError as e:
            if error_code(e) != "ScanNotFoundException" or started:
                raise
            last = e.response
        time.sleep(0.25)
    raise AssertionError(f"scan of {repo}@{digest} not done within {timeout}s; last answer: {last}")


def all_findings(ecr, repo: str, digest: str, max_results: int | None = None, max_pages: int = 2000):
    """Every page of DescribeImageScanFindings: (first response, findings, enhancedFindings)."""
    kw = {"maxResults": max_results} if max_results else {}
    first, basic, enhanced, token = None, [], [], None
    for _ in range(max_pages):
        r = describe(ecr, repo, digest, **kw, **({"nextToken": token} if token else {}))
        first = first or r
        page = r.get("imageScanFindings", {})
        got = page.get("findings", []) + page.get("enhancedFindings", [])
        if max_results:
            assert len(got) <= max_results, f"page of {len(got)} findings with maxResults={max_results}"
        basic += page.get("findings", [])
        enhanced += page.get("enhancedFindings", [])
        token = r.get("nextToken")
        if not token:
            return first, basic, enhanced
    raise AssertionError(f"more than {max_pages} pages")


def attrs(finding: dict) -> dict[str, str]:
    return {a["key"]: a.get("value") for a in finding.get("attributes", [])}


def norm_version(manager: str | None, version: str) -> str:
    """Go versions are compared without Go's `v` / `go` spelling (an OSV Go record and a scanner
    may spell `v1.2.3`, `1.2.3`, `go1.21.3`)."""
    if manager == "GOBINARY":
        return oracle.go_to_semver(version)
    return version


def basic_triples(findings: list[dict]) -> list[tuple[str, str, str]]:
    out = []
    for f in findings:
        a = attrs(f)
        assert "package_name" in a and "package_version" in a, f"finding without package attributes: {f}"
        out.append((f["name"], a["package_name"], a["package_version"]))
    return out


def enhanced_triples(findings: list[dict], expected_versions: set[str] = frozenset()) -> list[tuple[str, str, str]]:
    """(vulnerabilityId, package, version) per vulnerable package of each ACTIVE finding. rpm and
    dpkg versions may come as version + release (+ epoch): both spellings are tried against the
    expected ones."""
    out = []
    for f in findings:
        if f.get("status", "ACTIVE") != "ACTIVE":
            continue
        d = f["packageVulnerabilityDetails"]
        for vp in d["vulnerablePackages"]:
            version = vp.get("version", "")
            assembled = (f"{vp['epoch']}:" if vp.get("epoch") else "") + version + \
                (f"-{vp['release']}" if vp.get("release") else "")
            v = version if version in expected_versions else assembled
            out.append((d["vulnerabilityId"], vp["name"], norm_version(vp.get("packageManager"), v)))
    return out


def expected_findings(fixture: fixtures.Fixture, kind: str, osv_set: str = "v1") -> list[dict]:
    """The oracle's findings (full, with versions), equal to the golden ones where those are full."""
    found = oracle.expected(fixture.truth(), oracle.load_osv(golden.OSV / osv_set), kind)
    if fixture.name in golden.VERSIONLESS:
        assert sorted({(f["id"], f["package"]) for f in found}) == golden.load(osv_set, fixture.name, kind)["findings"]
    elif fixture.name in fixtures.HAND_MADE:
        assert golden.render(fixture.name, found) == golden.load(osv_set, fixture.name, kind)
    return found


def expected_triples(found: list[dict]) -> set[tuple[str, str, str]]:
    return {(f["id"], f["package"], norm_version(f["manager"], f["version"])) for f in found}


def assert_same_findings(got: list[tuple], want: set[tuple], what: str) -> None:
    dupes = [k for k, n in Counter(got).items() if n > 1]
    got_set = set(got)
    tp = got_set & want
    precision = len(tp) / len(got_set) if got_set else 1.0
    recall = len(tp) / len(want) if want else 1.0
    assert not dupes and precision == 1.0 and recall == 1.0, (
        f"{what}: precision {precision:.3f}, recall {recall:.3f} ({len(got)} reported, {len(want)} expected)\n"
        f"false positives: {sorted(got_set - want)}\nfalse negatives: {sorted(want - got_set)}\n"
        f"reported more than once: {dupes}")


def scan_now(ecr, repo: str, digest: str) -> dict:
    r = ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digest})
    assert r["imageScanStatus"]["status"] in ("IN_PROGRESS", "COMPLETE", "PENDING"), r
    assert r["imageId"]["imageDigest"] == digest and r["repositoryName"] == repo
    return wait_scan(ecr, repo, digest)


def expect_error(call, codes, **kw) -> ClientError:
    with pytest.raises(ClientError) as e:
        call(**kw)
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    assert error_code(e.value) in codes, e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.value.response
    assert e.value.response["Error"].get("Message"), e.value.response
    return e.value
