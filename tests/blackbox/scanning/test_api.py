"""The scanning API with boto3 and the aws CLI: configuration, scan on push (repository setting
and registry rule with a wildcard filter), manual scans and the 24-hour limit, pagination, the
waiter, enhanced findings against botocore's model, the statuses without a database, the
vulnerability database CLI, the SBOM and its referrer, authorization, and hostile inputs."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import time
import zipfile

import botocore.session
import pytest
import requests
from botocore.exceptions import ClientError, WaiterError

from scanning.scanapi import (OSV_V1, all_findings, assert_same_findings, basic_config, basic_triples,
                              describe, enhanced_config, error_code, expect_error,
                              expected_findings, expected_triples, scan_now, start, wait_scan)
from tools.berth import berth_binary

V1_RECORDS = sorted(OSV_V1.glob("*.json"))
V1_WITHDRAWN = [p for p in V1_RECORDS if json.loads(p.read_text()).get("withdrawn")]
V1_MODIFIED = "2026-06-01T00:00:00Z"


@pytest.fixture
def server(tmp_path, berth_only):
    srv = start(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def loaded(server):
    server.import_osv(OSV_V1)
    return server


def ecr_model():
    return botocore.session.get_session().get_service_model("ecr")


def not_scanned_for(ecr, repo, digest, seconds=3.0):
    """No scan of the image starts within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with pytest.raises(ClientError) as e:
            describe(ecr, repo, digest)
        assert error_code(e.value) == "ScanNotFoundException", e.value.response
        time.sleep(0.5)


# -- the vulnerability database ---------------------------------------------------------------

def test_vulndb_import_and_status(server, tmp_path):
    assert server.admin_json("vulndb", "status")["loaded"] is False
    summary = server.import_osv(OSV_V1)
    assert summary["advisories"] == len(V1_RECORDS) - len(V1_WITHDRAWN), summary
    assert summary["withdrawn_skipped"] == len(V1_WITHDRAWN), summary
    assert summary["source_updated_at"].startswith("2026-06-01T00:00:00"), summary
    status = server.admin_json("vulndb", "status")
    assert status["loaded"] is True and status["advisories"] == summary["advisories"], status
    assert status["source_updated_at"].startswith("2026-06-01T00:00:00"), status
    # The same records as one zip (osv.dev's all.zip form), and as files named one by one.
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in V1_RECORDS:
            z.write(p, p.name)
    assert server.import_osv(archive)["advisories"] == summary["advisories"]
    assert server.import_osv(*V1_RECORDS)["advisories"] == summary["advisories"]


@pytest.mark.parametrize("bad", ["{not json", json.dumps({"id": "X-1", "affected": "nope"}), json.dumps([1, 2])])
def test_invalid_data_is_refused_and_the_previous_database_keeps_serving(loaded, scan_fixtures, tmp_path, bad):
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in V1_RECORDS[:5]:
        shutil.copy(p, broken / p.name)
    (broken / "ZZZ-BROKEN-1.json").write_text(bad)
    before = loaded.admin_json("vulndb", "status")
    r = loaded.admin("vulndb", "import", str(broken), check=False)
    assert r.returncode != 0, r.stdout
    assert "ZZZ-BROKEN-1.json" in r.stderr, r.stderr  # says which file
    assert loaded.admin_json("vulndb", "status") == before
    # Scans still use the previous database.
    ecr = loaded.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="db/after-bad-import")
    digest = loaded.push("db/after-bad-import", scan_fixtures["alpine"])
    scan_now(ecr, "db/after-bad-import", digest)
    _, basic, _ = all_findings(ecr, "db/after-bad-import", digest)
    assert_same_findings(basic_triples(basic), expected_triples(expected_findings(scan_fixtures["alpine"], "basic")),
                         "alpine after a refused import")


def test_without_a_database_scans_are_findings_unavailable(server, scan_fixtures):
    ecr = server.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="nodb/alpine")
    digest = server.push("nodb/alpine", scan_fixtures["alpine"])
    ecr.start_image_scan(repositoryName="nodb/alpine", imageId={"imageDigest": digest})
    r = wait_scan(ecr, "nodb/alpine", digest)
    assert r["imageScanStatus"]["status"] == "FINDINGS_UNAVAILABLE", r["imageScanStatus"]
    assert not r.get("imageScanFindings", {}).get("findings")


# -- configuration ----------------------------------------------------------------------------

def test_registry_and_repository_scanning_configuration(loaded):
    ecr = loaded.ecr()
    default = ecr.get_registry_scanning_configuration()
    assert default["scanningConfiguration"]["scanType"] == "BASIC" and default["registryId"]
    rules = [{"scanFrequency": "SCAN_ON_PUSH",
              "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}]
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    got = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    assert got["scanType"] == "BASIC" and got["rules"] == rules, got
    ecr.create_repository(repositoryName="prod-api")
    ecr.create_repository(repositoryName="dev-api")
    ecr.create_repository(repositoryName="own-setting", imageScanningConfiguration={"scanOnPush": True})
    r = ecr.batch_get_repository_scanning_configuration(repositoryNames=["prod-api", "dev-api", "own-setting", "nope"])
    by = {c["repositoryName"]: c for c in r["scanningConfigurations"]}
    assert by["prod-api"]["scanFrequency"] == "SCAN_ON_PUSH" and by["prod-api"]["scanOnPush"] is True
    assert by["prod-api"]["appliedScanFilters"] == [{"filter": "prod-*", "filterType": "WILDCARD"}]
    assert by["prod-api"]["repositoryArn"].endswith(":repository/prod-api")
    assert by["dev-api"]["scanFrequency"] == "MANUAL" and by["dev-api"]["scanOnPush"] is False
    assert by["own-setting"]["scanOnPush"] is True
    assert [(f["repositoryName"], f["failureCode"]) for f in r["failures"]] == [("nope", "REPOSITORY_NOT_FOUND")]
    # The aws CLI reads the same.
    rc, out, err = loaded.aws("get-registry-scanning-configuration")
    assert rc == 0 and out["scanningConfiguration"]["rules"] == rules, err
    # ENHANCED with continuous scanning.
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
    r = ecr.batch_get_repository_scanning_configuration(repositoryNames=["dev-api"])
    assert r["scanningConfigurations"][0]["scanFrequency"] == "CONTINUOUS_SCAN"


def test_scan_on_push_by_repository_setting(loaded, scan_fixtures):
    ecr = loaded.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="sop/on", imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName="sop/off")
    on = loaded.push("sop/on", scan_fixtures["alpine"])
    off = loaded.push("sop/off", scan_fixtures["alpine"])
    r = wait_scan(ecr, "sop/on", on, started=False)
    assert r["imageScanStatus"]["status"] == "COMPLETE"
    not_scanned_for(ecr, "sop/off", off)
    # Turned on later (the deprecated operation still works), the next push is scanned.
    ecr.put_image_scanning_configuration(repositoryName="sop/off", imageScanningConfiguration={"scanOnPush": True})
    later = loaded.push("sop/off", scan_fixtures["distroless"], tag="v2")
    assert wait_scan(ecr, "sop/off", later, started=False)["imageScanStatus"]["status"] == "COMPLETE"


def test_scan_on_push_by_registry_rule_with_a_wildcard(loaded, scan_fixtures):
    ecr = loaded.ecr()
    basic_config(ecr, [{"scanFrequency": "SCAN_ON_PUSH",
                        "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}])
    for repo in ("prod-web", "dev-web"):
        ecr.create_repository(repositoryName=repo)
    prod = loaded.push("prod-web", scan_fixtures["alpine"])
    dev = loaded.push("dev-web", scan_fixtures["alpine"])
    r = wait_scan(ecr, "prod-web", prod, started=False)
    assert r["imageScanStatus"]["status"] == "COMPLETE"
    _, basic, _ = all_findings(ecr, "prod-web", prod)
    assert_same_findings(basic_triples(basic), expected_triples(expected_findings(scan_fixtures["alpine"], "basic")),
                         "alpine scanned on push")
    not_scanned_for(ecr, "dev-web", dev)
    # A push counts as the day's basic scan of that image.
    expect_error(ecr.start_image_scan, "LimitExceededException", repositoryName="prod-web",
                 imageId={"imageDigest": prod})


# -- manual scans -----------------------------------------------------------------------------

def test_manual_scan_then_the_24_hour_limit(loaded, scan_fixtures):
    ecr = loaded.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="manual/app")
    digest = loaded.push("manual/app", scan_fixtures["distroless"], tag="v1")
    err = expect_error(describe, "ScanNotFoundException", ecr=ecr, repo="manual/app", digest=digest)
    assert "manual/app" in err.response["Error"]["Message"] or digest in err.response["Error"]["Message"]
    # By tag, with the aws CLI.
    rc, out, stderr = loaded.aws("start-image-scan", "--repository-name", "manual/app", "--image-id", "imageTag=v1")
    assert rc == 0, stderr
    assert out["imageId"]["imageDigest"] == digest and out["imageScanStatus"]["status"] in ("IN_PROGRESS", "COMPLETE")
    r = wait_scan(ecr, "manual/app", digest)
    assert r["imageScanStatus"]["status"] == "COMPLETE"
    e = expect_error(ecr.start_image_scan, "LimitExceededException", repositoryName="manual/app",
                     imageId={"imageDigest": digest})
    assert "24" in e.response["Error"]["Message"] or "once" in e.response["Error"]["Message"].lower()
    # The findings stay readable.
    assert describe(ecr, "manual/app", digest)["imageScanStatus"]["status"] == "COMPLETE"


def test_unknown_images_and_repositories(loaded):
    ecr = loaded.ecr()
    ecr.create_repository(repositoryName="unknown/app")
    missing = "sha256:" + "0" * 64
    expect_error(ecr.start_image_scan, "ImageNotFoundException", repositoryName="unknown/app",
                 imageId={"imageDigest": missing})
    expect_error(ecr.start_image_scan, "ImageNotFoundException", repositoryName="unknown/app",
                 imageId={"imageTag": "nope"})
    expect_error(ecr.describe_image_scan_findings, "ImageNotFoundException", repositoryName="unknown/app",
                 imageId={"imageDigest": missing})
    expect_error(ecr.start_image_scan, "RepositoryNotFoundException", repositoryName="unknown/none",
                 imageId={"imageDigest": missing})


# -- reading findings -------------------------------------------------------------------------

def test_pagination_returns_every_finding_exactly_once(loaded, debian_fixture):
    ecr = loaded.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="pages/debian")
    digest = loaded.push("pages/debian", debian_fixture)
    scan_now(ecr, "pages/debian", digest)
    want = expected_triples(expected_findings(debian_fixture, "basic"))
    assert len(want) > 10
    _, whole, _ = all_findings(ecr, "pages/debian", digest)
    assert_same_findings(basic_triples(whole), want, "unpaginated")
    for n in (1, 2, 3):
        first, basic, _ = all_findings(ecr, "pages/debian", digest, max_results=n)
        assert_same_findings(basic_triples(basic), want, f"maxResults={n}")
        assert first.get("nextToken"), "a first page of a few findings has a next token"
    # botocore's paginator, and the aws CLI's.
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName="pages/debian", imageId={"imageDigest": digest}, PaginationConfig={"PageSize": 4})
    assert_same_findings(basic_triples([f for p in pages for f in p["imageScanFindings"].get("findings", [])]), want,
                         "boto3 paginator")
    rc, out, err = loaded.aws("describe-image-scan-findings", "--repository-name", "pages/debian",
                              "--image-id", f"imageDigest={digest}", "--page-size", "5")
    assert rc == 0, err
    assert_same_findings(basic_triples(out["imageScanFindings"]["findings"]), want, "aws CLI")


def test_waiters(loaded, scan_fixtures):
    ecr = loaded.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="wait/app")
    a = loaded.push("wait/app", scan_fixtures["alpine"], tag="a")
    b = loaded.push("wait/app", scan_fixtures["rpm"], tag="b")
    ecr.start_image_scan(repositoryName="wait/app", imageId={"imageDigest": a})
    ecr.get_waiter("image_scan_complete").wait(repositoryName="wait/app", imageId={"imageDigest": a},
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert describe(ecr, "wait/app", a)["imageScanStatus"]["status"] == "COMPLETE"
    ecr.start_image_scan(repositoryName="wait/app", imageId={"imageTag": "b"})
    rc, _, err = loaded.aws("wait", "image-scan-complete", "--repository-name", "wait/app",
                            "--image-id", "imageTag=b", timeout=330)
    assert rc == 0, err
    assert describe(ecr, "wait/app", b)["imageScanStatus"]["status"] == "COMPLETE"


def test_unsupported_image_ends_the_waiter_without_success(loaded, scan_fixtures):
    ecr = loaded.ecr()
    basic_config(ecr)
    ecr.create_repository(repositoryName="wait/amzn")
    d = loaded.push("wait/amzn", scan_fixtures["unsupported-amzn"])
    ecr.start_image_scan(repositoryName="wait/amzn", imageId={"imageDigest": d})
    r = wait_scan(ecr, "wait/amzn", d)
    assert r["imageScanStatus"]["status"] == "UNSUPPORTED_IMAGE" and r["imageScanStatus"]["description"]
    # The model's waiter knows only COMPLETE (success) and FAILED (failure): it keeps polling.
    with pytest.raises(WaiterError):
        ecr.get_waiter("image_scan_complete").wait(repositoryName="wait/amzn", imageId={"imageDigest": d},
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 2})


def check_shape(value, shape, path: str) -> None:
    """`value`, as boto3 parsed it, fits `shape` of the model: only modelled members, each of its type."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), (path, value)
        for k, v in value.items():
            assert k in shape.members, f"{path}.{k} is not in {shape.name}"
            check_shape(v, shape.members[k], f"{path}.{k}")
        for req in shape.required_members:
            assert req in value, f"{path}.{req} missing"
    elif t == "list":
        assert isinstance(value, list), (path, value)
        for i, v in enumerate(value):
            check_shape(v, shape.member, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), (path, value)
    elif t == "string":
        assert isinstance(value, str), (path, value)
        if shape.enum:
            assert value in shape.enum, (path, value, shape.enum)
    elif t == "timestamp":
        assert isinstance(value, datetime.datetime), (path, value)
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), (path, value)
    elif t in ("double", "float"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (path, value)
    elif t == "boolean":
        assert isinstance(value, bool), (path, value)


def test_enhanced_findings_fit_botocore_model(loaded, scan_fixtures):
    ecr = loaded.ecr()
    enhanced_config(ecr, "SCAN_ON_PUSH", "shape/*")
    ecr.create_repository(repositoryName="shape/languages")
    fx = scan_fixtures["languages"]
    digest = loaded.push("shape/languages", fx)
    wait_scan(ecr, "shape/languages", digest, started=False)
    first, basic, enhanced = all_findings(ecr, "shape/languages", digest)
    assert enhanced and not basic
    shape = ecr_model().shape_for("EnhancedImageScanFinding")
    layers = set(fx.truth()["layers"])
    for i, f in enumerate(enhanced):
        check_shape(f, shape, f"enhancedFindings[{i}]")
        for req in ("findingArn", "firstObservedAt", "lastObservedAt", "status", "severity", "type",
                    "packageVulnerabilityDetails", "awsAccountId", "resources"):
            assert req in f, f"{req} missing from {f}"
        assert f["status"] in ("ACTIVE", "SUPPRESSED", "CLOSED") and f["type"] == "PACKAGE_VULNERABILITY"
        assert f["severity"] in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNTRIAGED")
        assert f["firstObservedAt"] <= f["lastObservedAt"]
        d = f["packageVulnerabilityDetails"]
        assert d["vulnerabilityId"] and d["vulnerablePackages"]
        for vp in d["vulnerablePackages"]:
            assert vp["sourceLayerHash"] in layers, vp
            assert vp["name"] and vp["version"] and vp.get("packageManager") in (
                "OS", "PYTHONPKG", "NODEPKG", "GOBINARY", "CARGO", "JAR", "GEMSPEC"), vp
        res = f["resources"][0]
        assert res["type"] == "AWS_ECR_CONTAINER_IMAGE"
        image = res["details"]["awsEcrContainerImage"]
        assert image["imageHash"] == digest and image["repositoryName"] == "shape/languages", image
    assert len({f["findingArn"] for f in enhanced}) == len(enhanced), "findingArns are unique"
    # The summary counts what was listed.
    counts = first["imageScanFindings"]["findingSeverityCounts"]
    assert sum(counts.values()) == len(enhanced)


# -- SBOM ---------------------------------------------------------------------------------------

def test_sbom_and_its_referrer(loaded, scan_fixtures):
    ecr = loaded.ecr()
    enhanced_config(ecr, "SCAN_ON_PUSH", "sbom/*")
    ecr.create_repository(repositoryName="sbom/languages")
    fx = scan_fixtures["languages"]
    digest = loaded.push("sbom/languages", fx)
    wait_scan(ecr, "sbom/languages", digest, started=False)
    bom = loaded.admin_json("sbom", "--repository", "sbom/languages", "--digest", digest, "--format", "cyclonedx")
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5", {k: bom.get(k) for k in bom}

    def listed(components):
        out = set()
        for c in components:
            out.add((c["name"] if not c.get("group") else f"{c['group']}:{c['name']}", c.get("version", "")))
            out |= listed(c.get("components", []))
        return out
    got = {(n, v.removeprefix("v").removeprefix("go")) for n, v in listed(bom.get("components", []))}
    want = {(p.name, p.version.removeprefix("v").removeprefix("go")) for p in fx.packages}
    assert want <= got, f"packages missing from the SBOM: {sorted(want - got)}"
    # The scan also stored it as an OCI referrer of the image.
    r = requests.get(f"{loaded.url}/v2/sbom/languages/referrers/{digest}", timeout=30, auth=loaded.auth())
    assert r.status_code == 200, r.text
    refs = [m for m in r.json()["manifests"] if m.get("artifactType") == "application/vnd.cyclonedx+json"]
    assert len(refs) == 1, r.json()
    m = requests.get(f"{loaded.url}/v2/sbom/languages/manifests/{refs[0]['digest']}", timeout=30, auth=loaded.auth(),
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    assert m["subject"]["digest"] == digest
    blob = requests.get(f"{loaded.url}/v2/sbom/languages/blobs/{m['layers'][0]['digest']}", timeout=30,
                        auth=loaded.auth()).json()
    assert blob["bomFormat"] == "CycloneDX" and want <= {
        (n, v.removeprefix("v").removeprefix("go")) for n, v in listed(blob.get("components", []))}


# -- authorization ------------------------------------------------------------------------------

NO_SCAN = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
    {"Effect": "Deny", "Action": ["ecr:StartImageScan", "ecr:PutRegistryScanningConfiguration"], "Resource": "*"}]}


def test_a_user_without_start_image_scan_is_denied(tmp_path, berth_only, scan_fixtures):
    creds = {}

    def prepare(srv):
        # Users and keys are made before the server starts, so no identity cache is involved.
        srv.import_osv(OSV_V1)
        doc = tmp_path / "no-scan.json"
        doc.write_text(json.dumps(NO_SCAN))
        srv.admin("create-user", "--user", "viewer")
        srv.admin("attach-policy", "--user", "viewer", "--name", "no-scan", "--document", str(doc))
        out = srv.admin("create-access-key", "--user", "viewer", "--profile", "viewer").stdout
        creds["key"] = re.search(r"aws_access_key_id\s*=\s*(\S+)", out).group(1)
        creds["secret"] = re.search(r"aws_secret_access_key\s*=\s*(\S+)", out).group(1)

    srv = start(tmp_path, anonymous=False, prepare=prepare)
    key, secret = creds["key"], creds["secret"]
    try:
        admin_ecr, viewer = srv.ecr(), srv.ecr(key, secret)
        basic_config(admin_ecr)
        admin_ecr.create_repository(repositoryName="authz/app")
        digest = srv.push("authz/app", scan_fixtures["alpine"])
        e = expect_error(viewer.start_image_scan, "AccessDeniedException", repositoryName="authz/app",
                         imageId={"imageDigest": digest})
        assert "ecr:StartImageScan" in e.response["Error"]["Message"]
        expect_error(viewer.put_registry_scanning_configuration, "AccessDeniedException", scanType="ENHANCED")
        # The administrator scans; the viewer may read the findings.
        scan_now(admin_ecr, "authz/app", digest)
        assert describe(viewer, "authz/app", digest)["imageScanStatus"]["status"] == "COMPLETE"
        rc, _, err = srv.aws("start-image-scan", "--repository-name", "authz/app", "--image-id",
                             f"imageDigest={digest}", key=key, secret=secret)
        assert rc != 0 and "AccessDeniedException" in err, err
    finally:
        srv.stop()


# -- hostile inputs -----------------------------------------------------------------------------

def modelled_errors(op: str) -> set[str]:
    return {s.name for s in ecr_model().operation_model(op).error_shapes} | {"ValidationException"}


def rule(freq="SCAN_ON_PUSH", filters=None):
    return {"scanFrequency": freq, "repositoryFilters": filters if filters is not None else
            [{"filter": "*", "filterType": "WILDCARD"}]}


@pytest.mark.parametrize("kw", [
    {"scanType": "DEEP"},
    {"scanType": "BASIC", "rules": [rule("HOURLY")]},
    {"scanType": "BASIC", "rules": [rule("CONTINUOUS_SCAN")]},        # basic scans on push or by hand
    {"scanType": "ENHANCED", "rules": [rule("MANUAL")]},              # enhanced scans on push or continuously
    {"scanType": "BASIC", "rules": [rule(filters=[{"filter": "", "filterType": "WILDCARD"}])]},
    {"scanType": "BASIC", "rules": [rule(filters=[{"filter": "a" * 256, "filterType": "WILDCARD"}])]},
    {"scanType": "BASIC", "rules": [rule(filters=[{"filter": f"r{i}-*", "filterType": "WILDCARD"}
                                                  for i in range(101)])]},
    {"scanType": "BASIC", "rules": [rule(filters=[{"filter": "a*", "filterType": "REGEX"}])]},
    {"scanType": "BASIC", "rules": [rule(filters=[])]},
    {"scanType": "BASIC", "rules": [rule(), rule(), rule()]},
])
def test_bad_scanning_configurations_are_refused(loaded, kw):
    ecr = loaded.ecr(validate=False)
    before = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    e = expect_error(ecr.put_registry_scanning_configuration, modelled_errors("PutRegistryScanningConfiguration")
                     | {"InvalidParameterException"}, **kw)
    assert e.response["Error"]["Code"] in ("ValidationException", "InvalidParameterException")
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == before


def test_bad_find_requests_are_refused(loaded, scan_fixtures):
    ecr = loaded.ecr(validate=False)
    basic_config(ecr)
    ecr.create_repository(repositoryName="hostile/app")
    digest = loaded.push("hostile/app", scan_fixtures["alpine"])
    scan_now(ecr, "hostile/app", digest)
    for n in (0, -1, 1001):
        expect_error(describe, ("InvalidParameterException", "ValidationException"), ecr=ecr, repo="hostile/app",
                     digest=digest, maxResults=n)
    expect_error(describe, ("InvalidParameterException", "ValidationException"), ecr=ecr, repo="hostile/app",
                 digest=digest, nextToken="garbage-token")
    expect_error(ecr.start_image_scan, ("InvalidParameterException", "ValidationException"),
                 repositoryName="hostile/app", imageId={"imageDigest": "sha256:xyz"})
    expect_error(ecr.start_image_scan, ("InvalidParameterException", "ValidationException"),
                 repositoryName="hostile/app", imageId={})
    expect_error(ecr.batch_get_repository_scanning_configuration, ("InvalidParameterException", "ValidationException"),
                 repositoryNames=[f"r{i}" for i in range(26)])
    expect_error(ecr.batch_get_repository_scanning_configuration, ("InvalidParameterException", "ValidationException"),
                 repositoryNames=[])


def test_berth_admin_scan_commands_refuse_bad_arguments(loaded):
    r = loaded.admin("sbom", "--repository", "no/such", "--digest", "sha256:" + "1" * 64, check=False)
    assert r.returncode != 0 and r.stderr.strip()
    r = loaded.admin("vulndb", "import", str(loaded.data.parent / "does-not-exist"), check=False)
    assert r.returncode != 0 and "does-not-exist" in r.stderr
    r = subprocess.run([berth_binary(), "admin", "--data", str(loaded.data), "vulndb", "bogus"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0

