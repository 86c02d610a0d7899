"""Moving up (issue 11): `berth admin migrate --from <data dir>` copies an embedded data directory
into the stores the configuration names; here another data directory, the same code path as
PostgreSQL and S3.

A secured berth is started on a fresh data directory. Repositories, settings, policies and a
user with an access key are created through boto3 and `berth admin`. Images are pushed through
/v2: several tags, a multi-arch index, a referrer, layers of several MiB, and an immutable
repository with exclusion filters. Then berth is stopped, and the migration is killed with
SIGKILL midway, run again to the end, and run a third time (which must change nothing). Berth
is then started on the new directory, and everything is checked through real clients: pulls
are byte-identical, and tags, settings, policies, push times and credentials work as before.

A second test damages a blob in a source and checks that the migration reports it, writes
nothing under its digest, and exits with status 1.

Berth-only (it starts its own servers); skipped for other targets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import spawn_berth, spawn_berth_node
from tools import store
from tools.berth import backend_env, berth_binary

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX])
MIB = 1024 * 1024

REPO_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "everyone-pulls", "Effect": "Allow", "Principal": "*",
     "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}
LIFECYCLE = {"rules": [{"rulePriority": 1, "description": "old untagged",
                        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                      "countUnit": "days", "countNumber": 3650},
                        "action": {"type": "expire"}}]}


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("the migration test starts berth itself")


def server_env() -> dict[str, str]:
    """No BERTH_ or AWS_ setting of the caller: the administrator is the one berth writes to
    <data>/credentials on first start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_"))}
    env["RUST_BACKTRACE"] = "0"
    return env


def credentials(data: Path) -> tuple[str, str]:
    text = (data / "credentials").read_text()
    return (re.search(r"aws_access_key_id\s*=\s*(\S+)", text).group(1),
            re.search(r"aws_secret_access_key\s*=\s*(\S+)", text).group(1))


def admin(data: Path, *args: str) -> str:
    r = subprocess.run([berth_binary(), "admin", *args, "--data", str(data)], capture_output=True, text=True,
                       timeout=60, env=server_env())
    assert r.returncode == 0, f"berth admin {' '.join(args)}: {r.stderr}"
    return r.stdout


def migrate(src: Path, dst: Path) -> subprocess.Popen:
    # The source is always an embedded data directory; the destination is the stores the
    # backend under test names for `dst` (PostgreSQL and S3 in a cluster run: moving up).
    return subprocess.Popen([berth_binary(), "admin", "migrate", "--from", str(src), "--data", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=backend_env(dst, server_env()))


def migrate_to_end(src: Path, dst: Path) -> tuple[int, dict | None, str]:
    p = migrate(src, dst)
    out, err = p.communicate(timeout=300)
    return p.returncode, (json.loads(out) if out.strip() else None), err


class Registry:
    """A running berth and its clients."""

    def __init__(self, data: Path, embedded: bool = False):
        spawn = spawn_berth_node if embedded else spawn_berth
        self.proc = spawn(data, env=server_env(), anonymous=False)
        self.url = self.proc.url
        self.key, self.secret = credentials(data)

    def ecr(self, key: str | None = None, secret: str | None = None):
        return boto3.client("ecr", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key or self.key, aws_secret_access_key=secret or self.secret,
                            config=Config(retries={"total_max_attempts": 1}))

    def auth(self) -> tuple[str, str]:
        data = self.ecr().get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        return user, password

    def push_blob(self, repo: str, blob: bytes) -> dict:
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = requests.post(f"{self.url}/v2/{repo}/blobs/uploads/?digest={d}", data=blob, auth=self.auth(),
                          timeout=60)
        assert r.status_code == 201, (r.status_code, r.text)
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(blob)}

    def put_manifest(self, repo: str, ref: str, manifest: dict) -> tuple[str, bytes]:
        body = json.dumps(manifest).encode()
        r = requests.put(f"{self.url}/v2/{repo}/manifests/{ref}", data=body, auth=self.auth(), timeout=30,
                         headers={"Content-Type": manifest["mediaType"]})
        assert r.status_code == 201, (r.status_code, r.text)
        return "sha256:" + hashlib.sha256(body).hexdigest(), body

    def image(self, repo: str, seed: str, layer_sizes: list[int], tags: list[str]) -> tuple[dict, bytes]:
        """Pushes an image (random layers of these sizes) under `tags`, or by digest; returns its
        descriptor and manifest bytes."""
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        config = dict(self.push_blob(repo, cfg), mediaType="application/vnd.oci.image.config.v1+json")
        layers = [self.push_blob(repo, os.urandom(n)) for n in layer_sizes]
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
        digest, body = None, b""
        for ref in tags or [None]:
            if ref is None:
                body = json.dumps(manifest).encode()
                ref = "sha256:" + hashlib.sha256(body).hexdigest()
            digest, body = self.put_manifest(repo, ref, manifest)
        return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}, body

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(f"{self.url}/v2/{path}", auth=self.auth(), timeout=60, **kw)

    def stop(self):
        assert self.proc.stop() == 0, self.proc.log_tail()


def snapshot(reg: Registry) -> dict:
    """Everything a client sees: repositories and their settings, policies, images with tags and
    push times, every manifest by tag and digest and every blob, as bytes."""
    ecr = reg.ecr()
    out = {"repositories": {}, "registry_policy": ecr.get_registry_policy()["policyText"]}
    repos = ecr.describe_repositories()["repositories"]
    for repo in repos:
        name = repo["repositoryName"]
        entry = out["repositories"][name] = {}
        entry["record"] = {k: v for k, v in repo.items() if k != "repositoryUri"}
        entry["resource_tags"] = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
        try:
            entry["policy"] = ecr.get_repository_policy(repositoryName=name)["policyText"]
        except ClientError as e:
            entry["policy"] = e.response["Error"]["Code"]
        try:
            # Its text only: each server's lifecycle worker evaluates it on its own schedule.
            entry["lifecycle"] = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
        except ClientError as e:
            entry["lifecycle"] = e.response["Error"]["Code"]
        images = ecr.describe_images(repositoryName=name)["imageDetails"]
        entry["images"] = sorted(
            ({"digest": i["imageDigest"], "tags": sorted(i.get("imageTags", [])), "pushed": i["imagePushedAt"],
              "size": i.get("imageSizeInBytes"), "type": i.get("imageManifestMediaType"),
              "artifact": i.get("artifactMediaType")} for i in images), key=lambda i: i["digest"])
        manifests, blobs = {}, {}
        refs = [i["digest"] for i in entry["images"]] + [t for i in entry["images"] for t in i["tags"]]
        for ref in refs:
            r = reg.get(f"{name}/manifests/{ref}", headers={"Accept": ACCEPT})
            assert r.status_code == 200, (name, ref, r.status_code, r.text)
            manifests[ref] = r.content
            m = json.loads(r.content)
            for d in ([m["config"]] + m["layers"]) if "config" in m else []:
                b = reg.get(f"{name}/blobs/{d['digest']}")
                assert b.status_code == 200, (name, d, b.status_code)
                assert hashlib.sha256(b.content).hexdigest() == d["digest"].split(":")[1]
                blobs[d["digest"]] = b.content
        entry["manifests"], entry["blobs"] = manifests, blobs
        entry["tags_list"] = reg.get(f"{name}/tags/list").json()
    return out


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """The source filled and stopped, the migration killed midway and run to the end twice,
    and berth started on the destination."""
    work = tmp_path_factory.mktemp("migrate")
    src, dst = work / "src", work / "dst"
    reg = Registry(src, embedded=True)
    ecr = reg.ecr()
    ecr.create_repository(repositoryName="team/app", imageScanningConfiguration={"scanOnPush": True},
                          tags=[{"Key": "team", "Value": "platform"}])
    ecr.create_repository(repositoryName="team/frozen", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                          imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest*"}])
    ecr.create_repository(repositoryName="team/multi")
    ecr.set_repository_policy(repositoryName="team/app", policyText=json.dumps(REPO_POLICY))
    ecr.put_lifecycle_policy(repositoryName="team/app", lifecyclePolicyText=json.dumps(LIFECYCLE))
    account = ecr.describe_registry()["registryId"]
    registry_policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "replication", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": f"arn:aws:ecr:us-east-1:{account}:repository/*"}]}
    ecr.put_registry_policy(policyText=json.dumps(registry_policy))

    # Several MiB of layers, so that the kill lands while blobs are being copied.
    reg.image("team/app", "app-1", [6 * MIB, 2000], ["v1", "latest"])
    reg.image("team/app", "app-2", [5 * MIB], ["v2"])
    reg.image("team/app", "app-untagged", [300], [])
    amd, amd_body = reg.image("team/multi", "amd64", [4 * MIB], [])
    arm, arm_body = reg.image("team/multi", "arm64", [4 * MIB], [])
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        dict(amd, platform={"os": "linux", "architecture": "amd64"}),
        dict(arm, platform={"os": "linux", "architecture": "arm64"})]}
    index_digest, index_body = reg.put_manifest("team/multi", "1.0", index)
    reg.put_manifest("team/multi", "stable", index)
    empty = dict(reg.push_blob("team/multi", b"{}"), mediaType="application/vnd.oci.empty.v1+json")
    sig = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
           "config": empty, "layers": [reg.push_blob("team/multi", b"signature")],
           "subject": {"mediaType": OCI_INDEX, "digest": index_digest, "size": len(index_body)}}
    sig_body = json.dumps(sig).encode()
    sig_digest, _ = reg.put_manifest("team/multi", "sha256:" + hashlib.sha256(sig_body).hexdigest(), sig)
    reg.image("team/frozen", "frozen-1", [3 * MIB], ["v1", "latest"])

    # A user with a read-only policy and an access key, made with `berth admin`.
    admin(src, "create-user", "--user", "alice")
    admin(src, "attach-policy", "--user", "alice", "--name", "AmazonEC2ContainerRegistryReadOnly")
    creds = admin(src, "create-access-key", "--user", "alice")
    alice = (re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1),
             re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1))
    before = snapshot(reg)
    reg.stop()

    # Killed midway: as soon as the first large blob is in.
    p = migrate(src, dst)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if re.search(r"blob sha256:\w+ \(.*\): copied", line):
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=60)
    killed = p.returncode == -signal.SIGKILL
    rc, resumed, err = migrate_to_end(src, dst)
    assert rc == 0, err
    rc, again, again_err = migrate_to_end(src, dst)
    assert rc == 0, again_err

    dest = Registry(dst)
    yield {"before": before, "after": snapshot(dest), "dest": dest, "src": src, "dst": dst, "alice": alice,
           "account": account, "killed": killed, "first_lines": lines, "resumed": resumed, "again": again,
           "again_err": again_err, "sig": sig_digest, "index": index_digest}
    dest.stop()


def test_an_interrupted_migration_resumes_and_a_third_run_changes_nothing(moved):
    resumed, again = moved["resumed"], moved["again"]
    assert resumed["Failures"] == [] and again["Failures"] == []
    if moved["killed"]:
        # The blob the first run had copied is not copied again.
        assert resumed["Blobs"]["AlreadyThere"] >= 1, resumed
    assert not again["Changed"], again
    assert "nothing to copy" in moved["again_err"]
    for kind in ("Repositories", "Images", "Tags", "Blobs", "AccessKeys", "Accounts"):
        assert again[kind]["Copied"] == 0, (kind, again)
    assert again["Images"]["AlreadyThere"] == 8
    assert again["Tags"]["AlreadyThere"] == 7
    assert again["Repositories"]["AlreadyThere"] == 3
    assert again["BytesCopied"] == 0


def test_pulls_are_byte_identical_and_everything_else_came_along(moved):
    before, after = moved["before"], moved["after"]
    assert after["registry_policy"] == before["registry_policy"]
    assert set(after["repositories"]) == {"team/app", "team/frozen", "team/multi"}
    for name, b in before["repositories"].items():
        a = after["repositories"][name]
        for what in ("record", "resource_tags", "policy", "lifecycle", "images", "tags_list"):
            assert a[what] == b[what], (name, what)
        assert a["manifests"] == b["manifests"], name
        assert a["blobs"] == b["blobs"], name
    app = after["repositories"]["team/app"]["record"]
    assert app["imageScanningConfiguration"] == {"scanOnPush": True}
    frozen = after["repositories"]["team/frozen"]["record"]
    assert frozen["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert frozen["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest*"}]


def test_referrers_come_along(moved):
    dest = moved["dest"]
    r = dest.get(f"team/multi/referrers/{moved['index']}")
    assert r.status_code == 200, r.text
    assert [m["digest"] for m in r.json()["manifests"]] == [moved["sig"]]


def test_credentials_and_rules_still_hold_at_the_destination(moved):
    dest = moved["dest"]
    assert credentials(moved["dst"]) == credentials(moved["src"]), "the administrator's key came along"
    # The user's key was sealed under the source's server key, which the destination now has.
    alice = dest.ecr(*moved["alice"])
    names = {r["repositoryName"] for r in alice.describe_repositories()["repositories"]}
    assert names == {"team/app", "team/frozen", "team/multi"}
    with pytest.raises(ClientError) as e:
        alice.create_repository(repositoryName="alice/nope")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert dest.ecr().describe_registry()["registryId"] == moved["account"]
    # Immutability with its exclusion: v1 stays, latest may move.
    other, _ = dest.image("team/frozen", "frozen-2", [100], [])
    m = dest.get(f"team/frozen/manifests/{other['digest']}", headers={"Accept": ACCEPT}).content
    r = requests.put(f"{dest.url}/v2/team/frozen/manifests/v1", data=m, auth=dest.auth(), timeout=30,
                     headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and "immutable" in r.json()["errors"][0]["message"], r.text
    r = requests.put(f"{dest.url}/v2/team/frozen/manifests/latest", data=m, auth=dest.auth(), timeout=30,
                     headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text


def test_a_damaged_source_blob_is_reported_and_not_copied(moved, tmp_path):
    """A copy of the source with one layer's bytes changed (same size): the migration names the
    blob and the image, stores neither, copies the rest, and exits with status 1."""
    src = tmp_path / "src"
    subprocess.run(["cp", "-a", str(moved["src"]), str(src)], check=True)
    layer = json.loads(moved["before"]["repositories"]["team/app"]["manifests"]["v2"])["layers"][0]["digest"]
    hexd = layer.split(":")[1]
    path = src / "blobs" / "sha256" / hexd[:2] / hexd
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    dst = tmp_path / "dst"
    rc, summary, err = migrate_to_end(src, dst)
    assert rc == 1, err
    items = {f["Item"]: f["Reason"] for f in summary["Failures"]}
    assert f"blob {layer}" in items and "not copied" in items[f"blob {layer}"], items
    assert any(i.startswith("image ") and "team/app@" in i for i in items), items
    assert not store.of(dst).exists(store.blob_key(layer)), "nothing stored under its digest"
    assert summary["Images"]["Copied"] == 7, summary
    assert "not copied" in err
