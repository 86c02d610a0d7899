#!/usr/bin/env python3
"""Makes tests/fixtures/upgrade-<rev>.tar.gz: a data directory written by a previous release of
Berth, for tests/blackbox/server/test_upgrade.py (issue 10: "a data directory written by today's
release opens and serves unchanged after the upgrade").

    python3 tests/blackbox/tools/make_upgrade_fixture.py --berth /work/berth-prev-5b4a125 \
        [--rev 5b4a125] [--out tests/fixtures/upgrade-5b4a125.tar.gz]

It starts the given binary on a fresh data directory and, with `berth admin`, boto3 and plain
HTTP, leaves in it:

* account A (the default one, 111122223333, set by `account` in the config file) and account B
  (444455556666, made with `berth admin create-account`);
* users with access keys: alice (A: PowerUser + an inline document), reader (A: ReadOnly),
  bob (B: FullAccess + an inline Deny on DeleteRepository); and the administrator's key in
  `<data>/credentials` written by the first start;
* in A: `team/app` (tags v1+stable, v2+latest, one untagged Docker schema-2 image; v2 put with
  ECR PutImage, the others over /v2; a repository policy granting B pull, a lifecycle policy
  that expires nothing in the fixture, resource tags), `team/base` (IMMUTABLE, one image),
  `team/empty` (scan on push, AES256, no image); a registry policy;
* in B: `b/tools`, created by bob through the ECR API, one image pushed by bob over /v2;
* an upload session in `team/app`, opened by alice, with the first part of a blob PATCHed in
  and never completed.

Layers are a few KB of deterministic bytes (tools.images.prng_bytes). Everything a test checks
afterwards (blobs: digest -> size and sha256 of the bytes; images: digest, tags, manifest text;
policies, tags and keys as the server answered them) is written to `fixture.json` beside the
data directory (secrets included: they are test keys of a throwaway registry). The server is stopped with SIGTERM before packing, so the
metadata database is closed cleanly.

The config file `berth.toml` ships in the tarball: an upgrade keeps its configuration. Besides
`account` it sets `upload_expiry_secs` to 100 years, so that the upload left open survives the
expiry sweep when the fixture is opened months later (a real upgrade restarts within minutes).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/blackbox: `tools.*` and `conftest`

import boto3  # noqa: E402
import requests  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402

from conftest import spawn_berth  # noqa: E402
from tools.images import (DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,  # noqa: E402
                          canonical_json, prng_bytes, sha256_digest)

ACCOUNT_A, ACCOUNT_B = "111122223333", "444455556666"
REGION = "us-east-1"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

CONFIG_TOML = f'''# The configuration the previous release ran with; the upgrade keeps it.
account = "{ACCOUNT_A}"
region = "{REGION}"
# The upload left open in the fixture must outlive the time until the test opens it.
upload_expiry_secs = 3153600000
'''

ALICE_DOC = {"Version": "2012-10-17", "Statement": [
    {"Sid": "NoDeleteBase", "Effect": "Deny", "Action": "ecr:DeleteRepository",
     "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_A}:repository/team/base"}]}
BOB_DOC = {"Version": "2012-10-17", "Statement": [
    {"Sid": "KeepRepos", "Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"}]}
REPO_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "BPulls", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
     "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
                "ecr:DescribeImages", "ecr:ListImages"]}]}
REGISTRY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "BReplicates", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
     "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
     "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_A}:repository/*"}]}
# Expires nothing the fixture holds (3 images, none pushed with a `nightly` prefix), so a
# lifecycle run right after the upgrade leaves every recorded image in place.
LIFECYCLE = {"rules": [
    {"rulePriority": 1, "description": "keep 5 untagged",
     "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "nightlies go after 30 days",
     "selection": {"tagStatus": "tagged", "tagPrefixList": ["nightly"], "countType": "sinceImagePushed",
                   "countUnit": "days", "countNumber": 30},
     "action": {"type": "expire"}}]}
APP_TAGS = [{"Key": "team", "Value": "app"}, {"Key": "env", "Value": "prod"}]


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Fixture:
    def __init__(self, berth: Path, work: Path):
        self.berth = berth
        self.work = work
        self.data = work / "data"
        self.config = work / "berth.toml"
        self.config.write_text(CONFIG_TOML)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_"))}
        self.env.update(RUST_BACKTRACE="0", BERTH_CREATE_ON_PUSH="false")
        self.record: dict = {"previous_release": None, "region": REGION, "accounts": {},
                             "users": {}, "repositories": {}, "registry_policies": {}, "blobs": {}}
        self.url = ""
        self.proc = None

    # ---- berth admin ----

    def admin(self, *args: str) -> str:
        r = subprocess.run([str(self.berth), "admin", "--data", str(self.data), "--config", str(self.config),
                            *args], capture_output=True, text=True, timeout=60, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"berth admin {' '.join(args)}: {r.stderr}")
        return r.stdout

    def user(self, name: str, account: str, managed=(), documents=None) -> None:
        acct = ["--account", account]
        self.admin("create-user", "--user", name, *acct)
        for p in managed:
            self.admin("attach-policy", "--user", name, *acct, "--name", p)
        for doc_name, doc in (documents or {}).items():
            path = self.work / f"{name}-{doc_name}.json"
            path.write_text(json.dumps(doc))
            self.admin("attach-policy", "--user", name, *acct, "--name", doc_name, "--document", str(path))
            path.unlink()
        creds = self.admin("create-access-key", "--user", name, *acct, "--profile", name)
        key = re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1)
        secret = re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1)
        policies = json.loads(self.admin("list-policies", "--user", name, *acct))
        self.record["users"][name] = {"account": account, "arn": f"arn:aws:iam::{account}:user/{name}",
                                      "access_key_id": key, "secret_access_key": secret,
                                      "managed_policies": list(managed),
                                      "inline_policies": {k: json.dumps(v) for k, v in (documents or {}).items()},
                                      "list_policies": policies}

    # ---- clients ----

    def ecr(self, who: str):
        u = self.record["users"][who]
        return boto3.client("ecr", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=u["access_key_id"], aws_secret_access_key=u["secret_access_key"],
                            config=BotoConfig(retries={"total_max_attempts": 1}))

    def auth(self, who: str) -> dict:
        data = self.ecr(who).get_authorization_token()["authorizationData"][0]
        return {"Authorization": "Basic " + data["authorizationToken"]}

    def blob(self, who: str, repo: str, data: bytes, media_type: str) -> dict:
        """A monolithic upload (POST ?digest= with the bytes) through /v2."""
        d = sha256_digest(data)
        r = requests.post(f"{self.url}/v2/{repo}/blobs/uploads/?digest={d}", data=data, timeout=30,
                          headers={**self.auth(who), "Content-Type": "application/octet-stream"})
        assert r.status_code == 201, (repo, r.status_code, r.text)
        self.record["blobs"][d] = {"size": len(data), "sha256": sha256_hex(data)}
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def image(self, who: str, repo: str, seed: str, layer_sizes: list[int], docker: bool = False,
              shared: dict | None = None) -> tuple[bytes, str, list[str]]:
        """Pushes the blobs of a small image; returns (manifest bytes, its media type, layer digests)."""
        layer_type = DOCKER_LAYER if docker else OCI_LAYER_GZIP
        layers = [shared] if shared else []
        layers += [self.blob(who, repo, prng_bytes(f"{seed}/{i}", n), layer_type) for i, n in enumerate(layer_sizes)]
        cfg = canonical_json({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                              "config": {"Labels": {"org.berth.fixture": seed}},
                              "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}})
        config = self.blob(who, repo, cfg, DOCKER_CONFIG if docker else OCI_CONFIG)
        mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
        manifest = canonical_json({"schemaVersion": 2, "mediaType": mt, "config": config, "layers": layers})
        return manifest, mt, [l["digest"] for l in layers] + [config["digest"]]

    def put_v2(self, who: str, repo: str, manifest: bytes, mt: str, refs: list[str]) -> None:
        for ref in refs:
            r = requests.put(f"{self.url}/v2/{repo}/manifests/{ref}", data=manifest, timeout=30,
                             headers={**self.auth(who), "Content-Type": mt})
            assert r.status_code == 201, (repo, ref, r.status_code, r.text)

    def note_image(self, repo: str, manifest: bytes, mt: str, tags: list[str], blobs: list[str], via: str) -> dict:
        img = {"digest": sha256_digest(manifest), "tags": tags, "media_type": mt, "via": via,
               "manifest": manifest.decode(), "blobs": blobs}
        self.record["repositories"][repo]["images"].append(img)
        return img

    # ---- the scenario ----

    def build(self) -> None:
        accounts = json.loads(self.admin("list-accounts"))["Accounts"]
        assert {"AccountId": ACCOUNT_A, "Name": "default"} in accounts, accounts
        self.admin("create-account", "--name", "team-b", "--id", ACCOUNT_B)
        self.record["accounts"] = {"A": {"id": ACCOUNT_A, "name": "default"}, "B": {"id": ACCOUNT_B, "name": "team-b"}}
        self.user("alice", ACCOUNT_A, ["AmazonEC2ContainerRegistryPowerUser"], {"no-delete-base": ALICE_DOC})
        self.user("reader", ACCOUNT_A, ["AmazonEC2ContainerRegistryReadOnly"])
        self.user("bob", ACCOUNT_B, ["AmazonEC2ContainerRegistryFullAccess"], {"keep-repos": BOB_DOC})

        self.proc = spawn_berth(self.data, ["--config", str(self.config)], bin_path=self.berth, env=self.env,
                                anonymous=False, log_path=self.work / "berth.log")
        self.url = self.proc.url
        creds = (self.data / "credentials").read_text()
        self.record["users"]["berth-admin"] = {
            "account": ACCOUNT_A, "arn": f"arn:aws:iam::{ACCOUNT_A}:user/berth-admin",
            "access_key_id": re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1),
            "secret_access_key": re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1),
            "managed_policies": ["AdministratorAccess"], "inline_policies": {}, "from": "<data>/credentials"}

        admin = self.ecr("berth-admin")
        alice, bob = self.ecr("alice"), self.ecr("bob")
        repos = self.record["repositories"]

        # A: team/app, mutable, policy granting B pull, lifecycle, tags.
        admin.create_repository(repositoryName="team/app", tags=APP_TAGS)
        admin.set_repository_policy(repositoryName="team/app", policyText=json.dumps(REPO_POLICY))
        admin.put_lifecycle_policy(repositoryName="team/app", lifecyclePolicyText=json.dumps(LIFECYCLE))
        # A: team/base, IMMUTABLE; team/empty with scanning and encryption recorded, no image.
        admin.create_repository(repositoryName="team/base", imageTagMutability="IMMUTABLE")
        admin.create_repository(repositoryName="team/empty",
                                imageScanningConfiguration={"scanOnPush": True},
                                encryptionConfiguration={"encryptionType": "AES256"})
        admin.put_registry_policy(policyText=json.dumps(REGISTRY_POLICY))
        # B: b/tools, created by bob through the ECR API (so B owns it).
        bob.create_repository(repositoryName="b/tools", tags=[{"Key": "owner", "Value": "b"}])

        for name, owner in [("team/app", "A"), ("team/base", "A"), ("team/empty", "A"), ("b/tools", "B")]:
            acct = self.record["accounts"][owner]["id"]
            d = (bob if owner == "B" else admin).describe_repositories(registryId=acct, repositoryNames=[name])
            r = d["repositories"][0]
            repos[name] = {"owner": owner, "registry_id": acct, "arn": r["repositoryArn"],
                           "uri_at_creation": r["repositoryUri"],
                           "tag_mutability": r["imageTagMutability"],
                           "scan_on_push": r["imageScanningConfiguration"]["scanOnPush"],
                           "encryption_type": r["encryptionConfiguration"]["encryptionType"],
                           "images": [], "tags": [], "repository_policy": None, "lifecycle_policy": None}
            assert r["registryId"] == acct, r

        # team/app images. A base layer shared by v1 and v2 (stored once, referenced twice).
        base_layer = self.blob("alice", "team/app", prng_bytes("team/app/base", 4096), OCI_LAYER_GZIP)
        m, mt, blobs = self.image("alice", "team/app", "app-v1", [2048], shared=base_layer)
        self.put_v2("alice", "team/app", m, mt, ["v1", "stable"])
        self.note_image("team/app", m, mt, ["stable", "v1"], blobs, "v2")
        m, mt, blobs = self.image("alice", "team/app", "app-v2", [3072, 1024], shared=base_layer)
        alice.put_image(repositoryName="team/app", imageManifest=m.decode(), imageManifestMediaType=mt,
                        imageTag="v2")
        self.put_v2("alice", "team/app", m, mt, ["latest"])  # a second tag on the same image
        self.note_image("team/app", m, mt, ["latest", "v2"], blobs, "ecr PutImage (v2) + /v2 (latest)")
        m, mt, blobs = self.image("alice", "team/app", "app-untagged", [1500], docker=True)
        self.put_v2("alice", "team/app", m, mt, [sha256_digest(m)])
        self.note_image("team/app", m, mt, [], blobs, "v2 by digest")

        m, mt, blobs = self.image("berth-admin", "team/base", "base-1.0", [2500])
        self.put_v2("berth-admin", "team/base", m, mt, ["1.0"])
        self.note_image("team/base", m, mt, ["1.0"], blobs, "v2")

        m, mt, blobs = self.image("bob", "b/tools", "tools-1", [1800])
        self.put_v2("bob", "b/tools", m, mt, ["1"])
        self.note_image("b/tools", m, mt, ["1"], blobs, "v2")

        # Read back what the server holds, so the record is the server's view, not ours.
        for name, rec in repos.items():
            client = bob if rec["owner"] == "B" else admin
            acct = rec["registry_id"]
            rec["tags"] = client.list_tags_for_resource(resourceArn=rec["arn"])["tags"]
            try:
                rec["repository_policy"] = client.get_repository_policy(registryId=acct, repositoryName=name)["policyText"]
            except client.exceptions.RepositoryPolicyNotFoundException:
                pass
            try:
                rec["lifecycle_policy"] = client.get_lifecycle_policy(
                    registryId=acct, repositoryName=name)["lifecyclePolicyText"]
            except client.exceptions.LifecyclePolicyNotFoundException:
                pass
            described = client.describe_images(registryId=acct, repositoryName=name)["imageDetails"]
            by_digest = {d["imageDigest"]: d for d in described}
            assert set(by_digest) == {i["digest"] for i in rec["images"]}, (name, by_digest.keys())
            for img in rec["images"]:
                d = by_digest[img["digest"]]
                assert sorted(d.get("imageTags", [])) == img["tags"], (name, d, img["tags"])
                img["size_in_bytes"] = d["imageSizeInBytes"]
                img["pushed_at"] = d["imagePushedAt"].timestamp()
        self.record["registry_policies"]["A"] = admin.get_registry_policy()["policyText"]

        # The upload left open: alice POSTs, PATCHes the first 1,000 bytes of 3,000, stops.
        blob = prng_bytes("team/app/open-upload", 3000)
        h = self.auth("alice")
        r = requests.post(f"{self.url}/v2/team/app/blobs/uploads/", headers=h, timeout=30)
        assert r.status_code == 202, r.text
        loc = r.headers["Location"]
        r = requests.patch(requests.compat.urljoin(self.url, loc), data=blob[:1000], timeout=30,
                           headers={**h, "Content-Type": "application/octet-stream", "Content-Range": "0-999"})
        assert r.status_code == 202 and r.headers["Range"] == "0-999", (r.status_code, r.headers, r.text)
        loc = r.headers["Location"]
        path = loc.split("://", 1)[-1]
        path = path[path.index("/"):] if not loc.startswith("/") else loc
        self.record["open_upload"] = {
            "repository": "team/app", "user": "alice", "id": path.split("?")[0].rstrip("/").rsplit("/", 1)[-1],
            "location": path, "offset": 1000, "range": r.headers["Range"],
            "blob_base64": base64.b64encode(blob).decode(), "digest": sha256_digest(blob)}

    def stop(self) -> None:
        if self.proc is not None:
            code = self.proc.stop(grace=30)
            assert code == 0, f"berth exited with {code}:\n{self.proc.log_tail()}"


def pack(work: Path, out: Path, top: str) -> None:
    """A reproducible tarball of data/, berth.toml and fixture.json under `top/`."""
    members = [work / "berth.toml", work / "fixture.json", work / "data"]
    members += sorted(p for p in (work / "data").rglob("*"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in members:
            info = tar.gettarinfo(str(p), arcname=f"{top}/{p.relative_to(work)}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if p.is_file():
                with open(p, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", required=True, type=Path, help="the previous release's berth binary")
    ap.add_argument("--rev", default="5b4a125", help="its commit, for the file name and the record")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: tests/fixtures/upgrade-<rev>.tar.gz")
    ap.add_argument("--keep", type=Path, default=None, help="also leave the unpacked work dir here")
    args = ap.parse_args()
    out = args.out or HERE.parent.parent / "fixtures" / f"upgrade-{args.rev}.tar.gz"
    version = subprocess.run([str(args.berth), "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="berth-upgrade-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        fx = Fixture(args.berth.resolve(), work)
        try:
            fx.build()
        finally:
            fx.stop()
        fx.record["previous_release"] = {"rev": args.rev, "version": version,
                                         "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (work / "fixture.json").write_text(json.dumps(fx.record, indent=1, sort_keys=True) + "\n")
        (work / "berth.log").unlink(missing_ok=True)
        pack(work, out, f"upgrade-{args.rev}")
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(work, args.keep)
    print(f"{out}: {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
