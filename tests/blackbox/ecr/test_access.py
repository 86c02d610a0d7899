"""Access control (issue 4), shown from outside with real clients: identity policies made with
`berth admin`, repository and registry policies set through the ECR API, and the same rules on
both front doors (boto3 / the aws CLI on the ECR API, docker / podman / plain HTTP on /v2).

Berth-only: it starts berth without --anonymous, with accounts and users of its own, all set up
with `berth admin` before the server starts (so no identity cache is involved), and with
`server.registry_domain`: every account owns its registry (issue 10), so another account's user
reaches A's repositories on A's host, `<A>.<domain>:<port>` (a Host header on requests sent to
127.0.0.1; /etc/hosts names for podman), or with `registryId` = A on the ECR API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from ecr.oci import wait_for
from tools import store
from tools.berth import backend_env, berth_binary, secured_env
from tools.containers import Podman
from conftest import spawn_berth
from tools.dockerd import DockerDaemon, DockerUnavailable
from tools.etchosts import loopback_names, writable
from tools.images import layer_tar, prng_bytes

ADMIN_KEY, ADMIN_SECRET = "AKIABERTHACCESS00001", "berth-access-admin-secret"
ACCOUNT_B, ACCOUNT_C = "210987654321", "333344445555"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]

# Identity policies attached with `berth admin attach-policy --document`.
DENY_SECRET = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
    {"Sid": "NoSecret", "Effect": "Deny", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/access/secret"},
]}
DENY_DESCRIBE_IMAGES = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "ecr:DescribeImages", "Resource": "*"},
]}
# The push-only and pull-only identity policies of ECR's documentation ("Private repository
# policy examples").
PUSH_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                                   "ecr:CompleteLayerUpload", "ecr:InitiateLayerUpload", "ecr:PutImage",
                                   "ecr:UploadLayerPart"], "Resource": "*"},
]}
PULL_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                                   "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], "Resource": "*"},
]}
ONLY_DESCRIBE_IMAGES = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:DescribeImages", "Resource": "*"},
]}


@dataclass
class User:
    name: str
    account: str
    key: str
    secret: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.name}"


@dataclass
class World:
    url: str
    data: Path
    account: str  # the default account (A), which the administrator belongs to
    users: dict[str, User] = field(default_factory=dict)
    domain: str | None = None  # server.registry_domain, if the server was started with one

    @property
    def host(self) -> str:
        """The bare address: each caller's own registry."""
        return self.url.removeprefix("http://")

    def registry_host(self, account: str | None = None) -> str:
        """`<account>.<domain>:<port>`: the registry of `account` (A's by default)."""
        assert self.domain, "the server was started without a registry_domain"
        return f"{account or self.account}.{self.domain}:{self.url.rsplit(':', 1)[1]}"

    def arn(self, repo: str, owner: str | None = None) -> str:
        return f"arn:aws:ecr:us-east-1:{owner or self.account}:repository/{repo}"

    def ecr(self, who: str = "admin"):
        key, secret = (ADMIN_KEY, ADMIN_SECRET) if who == "admin" else (self.users[who].key, self.users[who].secret)
        return boto3.client("ecr", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))

    def token(self, who: str = "admin") -> str:
        data = self.ecr(who).get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        assert user == "AWS"
        return password

    def aws_env(self, who: str = "admin") -> dict[str, str]:
        key, secret = (ADMIN_KEY, ADMIN_SECRET) if who == "admin" else (self.users[who].key, self.users[who].secret)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        return env

    def aws(self, who: str, *args: str):
        r = subprocess.run(["aws", "ecr", *args, "--endpoint-url", self.url, "--output", "json"],
                           capture_output=True, text=True, timeout=60, env=self.aws_env(who))
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def server_env(domain: str | None = None) -> dict[str, str]:
    return secured_env(ADMIN_KEY, ADMIN_SECRET, domain)


def admin(data: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run([berth_binary(), "admin", "--data", str(data), *args], capture_output=True, text=True,
                       timeout=60, env=backend_env(data, env or server_env()))
    assert r.returncode == 0, f"berth admin {' '.join(args)}: {r.stderr}"
    return r.stdout


def new_user(data: Path, name: str, account: str, policies=(), documents=None) -> User:
    acct = ["--account", account]
    admin(data, "create-user", "--user", name, *acct)
    for p in policies:
        admin(data, "attach-policy", "--user", name, *acct, "--name", p)
    for doc_name, doc in (documents or {}).items():
        path = data.parent / f"{name}-{doc_name}.json"
        path.write_text(json.dumps(doc))
        admin(data, "attach-policy", "--user", name, *acct, "--name", doc_name, "--document", str(path))
    creds = admin(data, "create-access-key", "--user", name, *acct, "--profile", name)
    key = re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1)
    secret = re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1)
    assert creds.startswith(f"[{name}]"), creds
    return User(name, account, key, secret)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Account A (the default one) with users `ro` (ReadOnly), `power` (PowerUser), `denier`
    (ecr:* but an explicit Deny on access/secret), `nodescribe` (ecr:* but a Deny on
    ecr:DescribeImages), `describer` (ecr:DescribeImages only) and `nobody` (no policy);
    account B with `bob` (ReadOnly) and account C with `carol` (ReadOnly)."""
    data = tmp_path_factory.mktemp("access") / "data"
    accounts = json.loads(admin(data, "list-accounts"))["Accounts"]
    account = next(a["AccountId"] for a in accounts if a["Name"] == "default")
    for acct, name in [(ACCOUNT_B, "team-b"), (ACCOUNT_C, "team-c")]:
        assert json.loads(admin(data, "create-account", "--name", name, "--id", acct)) == {"AccountId": acct,
                                                                                            "Name": name}
    users = {
        "ro": new_user(data, "ro", account, ["AmazonEC2ContainerRegistryReadOnly"]),
        "power": new_user(data, "power", account, ["AmazonEC2ContainerRegistryPowerUser"]),
        "denier": new_user(data, "denier", account, documents={"deny-secret": DENY_SECRET}),
        "nodescribe": new_user(data, "nodescribe", account, documents={"no-describe": DENY_DESCRIBE_IMAGES}),
        "describer": new_user(data, "describer", account, documents={"describe-only": ONLY_DESCRIBE_IMAGES}),
        "nobody": new_user(data, "nobody", account),
        "pusher": new_user(data, "pusher", account, documents={"push-only": PUSH_ONLY}),
        "puller": new_user(data, "puller", account, documents={"pull-only": PULL_ONLY}),
        "bob": new_user(data, "bob", ACCOUNT_B, ["AmazonEC2ContainerRegistryReadOnly"]),
        "carol": new_user(data, "carol", ACCOUNT_C, ["AmazonEC2ContainerRegistryReadOnly"]),
    }
    domain = f"berth-{uuid.uuid4().hex[:8]}.test"
    proc = spawn_berth(data, env=server_env(domain), anonymous=False)
    yield World(proc.url, data, account, users, domain)
    proc.stop()


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def denied(call, action: str, resource: str | None = None, code: str = "AccessDeniedException", **kw):
    """`call(**kw)` fails with `code`; the message names `action` and `resource`."""
    with pytest.raises(ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    assert err["Code"] == code, (action, err)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert action in err["Message"], err
    if resource:
        assert resource in err["Message"], err
    if code == "AccessDeniedException":
        # AWS's wording: who, what, on what, and why.
        assert re.match(r"User: arn:aws:iam::\d{12}:user/\S+ is not authorized to perform: ecr:\w+ on resource: \S+ "
                        r"(with an explicit deny in an? (identity|resource)-based policy|because no "
                        r"(identity|resource)-based policy allows the ecr:\w+ action)$", err["Message"]), err
    return err["Message"]


def push_image(world: World, repo: str, tag: str, seed: str, token: str | None = None) -> tuple[str, str, str]:
    """An OCI image (config + one uncompressed tar layer, runnable by podman) pushed through /v2
    with `token` (the admin's by default). Returns (manifest digest, manifest text, layer
    digest)."""
    auth = ("AWS", token or world.token())
    layer = seed_layer(seed)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"seed": seed}},
                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    digests = []
    for blob in (cfg, layer):
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = requests.post(f"{world.url}/v2/{repo}/blobs/uploads/?digest={d}", data=blob, auth=auth, timeout=10)
        assert r.status_code == 201, (r.status_code, r.text)
        digests.append(d)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0], "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1],
                    "size": len(layer)}]})
    r = requests.put(f"{world.url}/v2/{repo}/manifests/{tag}", data=manifest, auth=auth, timeout=10,
                     headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, (r.status_code, r.text)
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest(), manifest, digests[1]


def seed_layer(seed: str) -> bytes:
    return layer_tar([(f"{seed}.bin", prng_bytes(seed, 2048))])


def v2(world: World, method: str, path: str, token: str | None, host: str | None = None,
       **kw) -> requests.Response:
    """A /v2 request to 127.0.0.1; `host` (a Host header) addresses that registry instead of the
    caller's own."""
    auth = ("AWS", token) if token else None
    headers = dict(kw.pop("headers", {"Accept": OCI_MANIFEST}))
    if host:
        headers["Host"] = host
    return requests.request(method, f"{world.url}/v2/{path}", auth=auth, headers=headers, timeout=10, **kw)


def v2_denied(r: requests.Response, action: str, resource: str | None = None):
    assert r.status_code == 403, (r.status_code, r.text)
    err = r.json()["errors"][0]
    assert err["code"] == "DENIED", err
    assert action in err["message"], err
    if resource:
        assert resource in err["message"], err


def new_repo(world: World, name: str, owner: str = "admin") -> str:
    world.ecr(owner).create_repository(repositoryName=name)
    return name


def repo_policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# ---------------------------------------------------------------------------------------------
# 1. read-only users pull but do not push
# ---------------------------------------------------------------------------------------------


def test_read_only_user_pulls_but_cannot_push_on_either_api(world):
    repo = new_repo(world, "access/readonly")
    digest, manifest, layer = push_image(world, repo, "v1", "readonly")
    arn = world.arn(repo)
    ro = world.ecr("ro")

    # Reads are allowed through the ECR API...
    got = ro.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert got["failures"] == [] and got["images"][0]["imageManifest"] == manifest
    assert got["images"][0]["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    assert [d["imageDigest"] for d in ro.describe_images(repositoryName=repo)["imageDetails"]] == [digest]
    assert ro.list_images(repositoryName=repo)["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert ro.get_download_url_for_layer(repositoryName=repo, layerDigest=layer)["layerDigest"] == layer
    assert [r["repositoryName"] for r in ro.describe_repositories(repositoryNames=[repo])["repositories"]] == [repo]

    # ...writes are not, and the error names the action and the repository ARN.
    denied(ro.put_image, "ecr:PutImage", arn, repositoryName=repo, imageManifest=manifest, imageTag="v2")
    denied(ro.initiate_layer_upload, "ecr:InitiateLayerUpload", arn, repositoryName=repo)
    denied(ro.batch_delete_image, "ecr:BatchDeleteImage", arn, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    denied(ro.delete_repository, "ecr:DeleteRepository", arn, repositoryName=repo, force=True)
    denied(ro.create_repository, "ecr:CreateRepository", world.arn("access/ro-made"),
           repositoryName="access/ro-made")
    denied(ro.set_repository_policy, "ecr:SetRepositoryPolicy", arn, repositoryName=repo,
           policyText=repo_policy({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}))
    denied(ro.tag_resource, "ecr:TagResource", arn, resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])

    # The aws CLI sees the same.
    rc, out, err = world.aws("ro", "batch-get-image", "--repository-name", repo, "--image-ids", "imageTag=v1")
    assert rc == 0, err
    assert out["images"][0]["imageId"]["imageDigest"] == digest
    rc, _, err = world.aws("ro", "put-image", "--repository-name", repo, "--image-tag", "v3", "--image-manifest",
                           manifest)
    assert rc != 0 and "AccessDeniedException" in err and "ecr:PutImage" in err and arn in err, err

    # /v2 with the read-only user's token: pulls work, every write is DENIED with the same action.
    token = world.token("ro")
    r = v2(world, "GET", f"{repo}/manifests/v1", token)
    assert r.status_code == 200 and r.text == manifest
    assert v2(world, "GET", f"{repo}/blobs/{layer}", token).content == seed_layer("readonly")
    assert v2(world, "GET", f"{repo}/tags/list", token).json()["tags"] == ["v1"]
    v2_denied(v2(world, "POST", f"{repo}/blobs/uploads/", token), "ecr:InitiateLayerUpload", arn)
    v2_denied(v2(world, "PUT", f"{repo}/manifests/v2", token, data=manifest,
                 headers={"Content-Type": OCI_MANIFEST}), "ecr:PutImage", arn)
    v2_denied(v2(world, "DELETE", f"{repo}/manifests/{digest}", token), "ecr:BatchDeleteImage", arn)
    # Nothing changed.
    assert world.ecr().list_images(repositoryName=repo)["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]


def docker_login(d: DockerDaemon, world: World, who: str):
    r = subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", world.host],
                       input=world.token(who), capture_output=True, text=True, timeout=60, env=d.env)
    assert r.returncode == 0, r.stderr


def test_read_only_user_with_docker(world, tmp_path):
    """The administrator pushes a real image with docker; the read-only user's docker pulls it
    and its push of another tag is refused with `denied`."""
    try:
        d = DockerDaemon()
        d.start()
    except DockerUnavailable as e:
        pytest.skip(f"cannot start a private dockerd: {e}")
    try:
        repo = new_repo(world, "access/docker")
        ref = f"{world.host}/{repo}"
        (tmp_path / "rootfs.tar").write_bytes(layer_tar([("ro.txt", b"pulled by a read-only user\n")]))
        d.docker("import", str(tmp_path / "rootfs.tar"), f"{ref}:v1")
        docker_login(d, world, "admin")
        pushed = re.search(r"digest: (sha256:[0-9a-f]{64})", d.docker("push", f"{ref}:v1").stdout).group(1)
        d.docker("rmi", f"{ref}:v1")

        docker_login(d, world, "ro")
        d.docker("pull", f"{ref}:v1")
        d.docker("tag", f"{ref}:v1", f"{ref}:ro-push")
        r = d.docker("push", f"{ref}:ro-push", check=False)
        assert r.returncode != 0
        assert "denied" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
        ids = world.ecr().list_images(repositoryName=repo)["imageIds"]
        assert ids == [{"imageDigest": pushed, "imageTag": "v1"}]
    finally:
        d.stop()


# ---------------------------------------------------------------------------------------------
# 2. an explicit Deny on one repository
# ---------------------------------------------------------------------------------------------


def test_explicit_deny_hides_one_repository_on_both_apis(world):
    secret, open_ = new_repo(world, "access/secret"), new_repo(world, "access/open")
    push_image(world, secret, "v1", "secret")
    push_image(world, open_, "v1", "open")
    den = world.ecr("denier")
    arn = world.arn(secret)

    denied(den.describe_images, "ecr:DescribeImages", arn, repositoryName=secret)
    denied(den.batch_get_image, "ecr:BatchGetImage", arn, repositoryName=secret, imageIds=[{"imageTag": "v1"}])
    denied(den.list_images, "ecr:ListImages", arn, repositoryName=secret)
    denied(den.describe_repositories, "ecr:DescribeRepositories", arn, repositoryNames=[secret])
    denied(den.initiate_layer_upload, "ecr:InitiateLayerUpload", arn, repositoryName=secret)
    denied(den.delete_repository, "ecr:DeleteRepository", arn, repositoryName=secret, force=True)
    names = [r["repositoryName"] for r in den.describe_repositories()["repositories"]]
    assert open_ in names and secret not in names, names

    # ecr:* still holds everywhere else: it reads and writes the other repository.
    assert den.batch_get_image(repositoryName=open_, imageIds=[{"imageTag": "v1"}])["failures"] == []
    token = world.token("denier")
    push_image(world, open_, "by-denier", "by-denier", token=token)

    # /v2 with its token: the same rule.
    v2_denied(v2(world, "GET", f"{secret}/manifests/v1", token), "ecr:BatchGetImage", arn)
    assert v2(world, "HEAD", f"{secret}/manifests/v1", token).status_code == 403  # no body on HEAD
    v2_denied(v2(world, "GET", f"{secret}/tags/list", token), "ecr:ListImages", arn)
    v2_denied(v2(world, "POST", f"{secret}/blobs/uploads/", token), "ecr:InitiateLayerUpload", arn)
    assert v2(world, "GET", f"{open_}/manifests/v1", token).status_code == 200
    catalog = v2(world, "GET", "_catalog?n=1000", token).json()["repositories"]
    assert open_ in catalog and secret not in catalog, catalog
    # The administrator still sees both.
    catalog = v2(world, "GET", "_catalog?n=1000", world.token()).json()["repositories"]
    assert {open_, secret} <= set(catalog)


def test_describe_images_is_authorized_as_ecr_describe_images(world):
    """ECR authorizes DescribeImages with ecr:DescribeImages (ListImages with ecr:ListImages)."""
    repo = new_repo(world, "access/describe")
    push_image(world, repo, "v1", "describe")
    arn = world.arn(repo)
    # A Deny on ecr:DescribeImages alone refuses DescribeImages and leaves ListImages alone...
    assert world.ecr("nodescribe").list_images(repositoryName=repo)["imageIds"]
    denied(world.ecr("nodescribe").describe_images, "ecr:DescribeImages", arn, repositoryName=repo)
    # ...and an Allow of ecr:DescribeImages alone is enough for it.
    assert world.ecr("describer").describe_images(repositoryName=repo)["imageDetails"]
    denied(world.ecr("describer").list_images, "ecr:ListImages", arn, repositoryName=repo)


def test_push_only_policy_puts_images_with_the_ecr_api(world):
    repo = new_repo(world, "access/pushonly")
    digest, manifest, _ = push_image(world, repo, "v1", "pushonly", token=world.token("pusher"))
    out = world.ecr("pusher").put_image(repositoryName=repo, imageManifest=manifest, imageTag="v2")
    assert out["image"]["imageId"] == {"imageDigest": digest, "imageTag": "v2"}


def test_pull_only_policy_gets_images_by_tag_and_digest(world):
    repo = new_repo(world, "access/pullonly")
    digest, manifest, _ = push_image(world, repo, "v1", "pullonly")
    puller = world.ecr("puller")
    assert puller.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["images"]
    assert v2(world, "GET", f"{repo}/manifests/v1", world.token("puller")).status_code == 200
    got = puller.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1", "imageDigest": digest}])
    assert got["failures"] == [] and got["images"][0]["imageManifest"] == manifest


# ---------------------------------------------------------------------------------------------
# 3. cross-account access through the repository policy
# ---------------------------------------------------------------------------------------------


def bob_can_pull(world: World, repo: str, manifest: str) -> bool:
    """Bob (account B) pulls `repo` (owned by A) from A's registry through both APIs
    (`registryId` = A; A's host on /v2), or is denied on both: a mixed answer fails the test."""
    bob = world.ecr("bob")
    try:
        got = bob.batch_get_image(registryId=world.account, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        ecr_ok = got["images"][0]["imageManifest"] == manifest
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
        assert "ecr:BatchGetImage" in e.response["Error"]["Message"]
        assert world.arn(repo) in e.response["Error"]["Message"]
        ecr_ok = False
    r = v2(world, "GET", f"{repo}/manifests/v1", world.token("bob"), host=world.registry_host())
    if r.status_code == 200:
        assert r.text == manifest
        v2_ok = True
    else:
        v2_denied(r, "ecr:BatchGetImage", world.arn(repo))
        v2_ok = False
    assert ecr_ok == v2_ok, f"ECR API says {ecr_ok}, /v2 says {v2_ok}"
    return ecr_ok


def test_cross_account_pull_needs_the_owners_repository_policy(world):
    repo = new_repo(world, "access/shared")
    _, manifest, layer = push_image(world, repo, "v1", "shared")
    owner = world.ecr()
    bob = world.ecr("bob")
    assert not bob_can_pull(world, repo, manifest), "no repository policy yet"

    # Each principal form ECR accepts for another account: its root, its id, one user's ARN.
    for principal in [f"arn:aws:iam::{ACCOUNT_B}:root", ACCOUNT_B, world.users["bob"].arn]:
        text = repo_policy({"Sid": "PullFromB", "Effect": "Allow", "Principal": {"AWS": principal},
                            "Action": PULL_ACTIONS})
        out = owner.set_repository_policy(repositoryName=repo, policyText=text)
        assert out["registryId"] == world.account and out["repositoryName"] == repo
        # Policy writes made through the API on this server take effect at once.
        assert bob_can_pull(world, repo, manifest), principal
        assert bob.get_download_url_for_layer(registryId=world.account, repositoryName=repo, layerDigest=layer)
        # The policy grants pulls only, and bob's own identity is read-only anyway.
        denied(bob.put_image, "ecr:PutImage", world.arn(repo), registryId=world.account, repositoryName=repo,
               imageManifest=manifest, imageTag="from-b")
        # Account C is not named.
        denied(world.ecr("carol").batch_get_image, "ecr:BatchGetImage", world.arn(repo),
               registryId=world.account, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        owner.delete_repository_policy(repositoryName=repo)
        assert not bob_can_pull(world, repo, manifest), f"access remains after DeleteRepositoryPolicy ({principal})"

    # registryId naming B (not the owner), or none (the caller's own registry), does not find A's
    # repository; nor does bob's own registry on /v2 (the bare address).
    for kw in ({"registryId": ACCOUNT_B}, {}):
        with pytest.raises(ClientError) as e:
            bob.batch_get_image(**kw, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException", (kw, e.value.response)
        assert f"registry with id '{ACCOUNT_B}'" in e.value.response["Error"]["Message"], e.value.response
    r = v2(world, "GET", f"{repo}/manifests/v1", world.token("bob"))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"), r.text


def test_cross_account_pull_with_podman(world):
    """Bob's podman pulls A's image from A's host (a name in /etc/hosts) only while A's
    repository policy allows it."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if not writable():
        pytest.skip("cannot add names to /etc/hosts (not root)")
    repo = new_repo(world, "access/podman")
    _, manifest, _ = push_image(world, repo, "v1", "podman")
    base = Path(tempfile.mkdtemp(prefix="bpod-", dir="/tmp"))  # podman wants a runroot under 50 bytes
    a_host = world.registry_host()
    try:
        with loopback_names([a_host.rsplit(":", 1)[0]], f"berth test_access.py {world.domain}"):
            podman_cross_account(world, Podman(base, a_host), repo, a_host)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def podman_cross_account(world: World, podman: Podman, repo: str, a_host: str):
    ref = f"{a_host}/{repo}:v1"

    def pull():
        return podman("pull", "--tls-verify=false", "--creds", f"AWS:{world.token('bob')}", ref, check=False)

    r = pull()
    assert r.returncode != 0 and "denied" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    world.ecr().set_repository_policy(repositoryName=repo, policyText=repo_policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": PULL_ACTIONS}))
    r = pull()
    assert r.returncode == 0, r.stdout + r.stderr
    podman("rmi", ref)
    world.ecr().delete_repository_policy(repositoryName=repo)
    r = pull()
    assert r.returncode != 0 and "denied" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


# ---------------------------------------------------------------------------------------------
# 4. policy validation and the policy operations
# ---------------------------------------------------------------------------------------------

BAD_POLICIES = [
    ("{not json", "JSON"),
    ("[]", "object"),
    (repo_policy(), "at least one statement"),
    (json.dumps({"Version": "2099-01-01", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                         "Action": "ecr:*"}]}), "Version"),
    (json.dumps({"Version": "2012-10-17", "Bogus": 1, "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}), "Bogus"),
    (repo_policy({"Effect": "Maybe", "Principal": "*", "Action": "ecr:BatchGetImage"}), "Effect"),
    (repo_policy({"Effect": "Allow", "Action": "ecr:BatchGetImage"}), "Principal"),
    (repo_policy({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
                  "Condition": {"NoSuchOperator": {"aws:SourceIp": "10.0.0.0/8"}}}), "NoSuchOperator"),
    (repo_policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}, "Action": "ecr:*"}), "wildcard"),
]


@pytest.mark.parametrize("text,reason", BAD_POLICIES, ids=[r for _, r in BAD_POLICIES])
def test_set_repository_policy_refuses_bad_documents_with_a_reason(world, text, reason):
    repo = "access/validation"
    try:
        new_repo(world, repo)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "RepositoryAlreadyExistsException"
    owner = world.ecr()
    with pytest.raises(ClientError) as e:
        owner.set_repository_policy(repositoryName=repo, policyText=text)
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidParameterException", err
    assert "PolicyText" in err["Message"] and reason.lower() in err["Message"].lower(), err
    with pytest.raises(ClientError) as e:
        owner.get_repository_policy(repositoryName=repo)
    assert e.value.response["Error"]["Code"] == "RepositoryPolicyNotFoundException"


def test_repository_and_registry_policy_operations(world):
    repo = new_repo(world, "access/policyops")
    owner = world.ecr()
    for call in (owner.get_repository_policy, owner.delete_repository_policy):
        with pytest.raises(ClientError) as e:
            call(repositoryName=repo)
        assert e.value.response["Error"]["Code"] == "RepositoryPolicyNotFoundException"
        assert repo in e.value.response["Error"]["Message"]
    text = repo_policy({"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": ACCOUNT_B}, "Action": PULL_ACTIONS})
    owner.set_repository_policy(repositoryName=repo, policyText=text)
    got = owner.get_repository_policy(repositoryName=repo)
    assert (got["registryId"], got["repositoryName"], json.loads(got["policyText"])) == (
        world.account, repo, json.loads(text))
    # A read-only user may read the policy (ecr:GetRepositoryPolicy is in ReadOnly), not change it.
    assert json.loads(world.ecr("ro").get_repository_policy(repositoryName=repo)["policyText"]) == json.loads(text)
    denied(world.ecr("ro").delete_repository_policy, "ecr:DeleteRepositoryPolicy", world.arn(repo),
           repositoryName=repo)
    out = owner.delete_repository_policy(repositoryName=repo)
    assert json.loads(out["policyText"]) == json.loads(text)
    with pytest.raises(ClientError) as e:
        owner.get_repository_policy(repositoryName=repo)
    assert e.value.response["Error"]["Code"] == "RepositoryPolicyNotFoundException"
    # The aws CLI too.
    rc, _, err = world.aws("admin", "get-repository-policy", "--repository-name", repo)
    assert rc != 0 and "RepositoryPolicyNotFoundException" in err

    # Registry policy: put, get, delete, and NotFound around them.
    for call in (owner.get_registry_policy, owner.delete_registry_policy):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "RegistryPolicyNotFoundException"
    with pytest.raises(ClientError) as e:
        owner.put_registry_policy(policyText="{nope")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    reg = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "ReplicateToB", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": [f"arn:aws:ecr:us-east-1:{world.account}:repository/*"]}]})
    out = owner.put_registry_policy(policyText=reg)
    assert out["registryId"] == world.account and json.loads(out["policyText"]) == json.loads(reg)
    got = owner.get_registry_policy()
    assert got["registryId"] == world.account and json.loads(got["policyText"]) == json.loads(reg)
    rc, out, err = world.aws("admin", "get-registry-policy")
    assert rc == 0 and json.loads(out["policyText"]) == json.loads(reg), err
    denied(world.ecr("ro").put_registry_policy, "ecr:PutRegistryPolicy", policyText=reg)
    out = owner.delete_registry_policy()
    assert json.loads(out["policyText"]) == json.loads(reg)
    with pytest.raises(ClientError) as e:
        owner.get_registry_policy()
    assert e.value.response["Error"]["Code"] == "RegistryPolicyNotFoundException"


# ---------------------------------------------------------------------------------------------
# 5. no policy, no access; unknown and revoked keys
# ---------------------------------------------------------------------------------------------


def test_user_without_policies_is_denied_everything(world):
    repo = new_repo(world, "access/nobody")
    _, manifest, layer = push_image(world, repo, "v1", "nobody")
    nobody = world.ecr("nobody")
    arn = world.arn(repo)
    calls = [
        (nobody.get_authorization_token, "ecr:GetAuthorizationToken", None, {}),
        (nobody.describe_repositories, "ecr:DescribeRepositories", arn, {"repositoryNames": [repo]}),
        (nobody.create_repository, "ecr:CreateRepository", world.arn("access/by-nobody"),
         {"repositoryName": "access/by-nobody"}),
        (nobody.delete_repository, "ecr:DeleteRepository", arn, {"repositoryName": repo}),
        (nobody.list_images, "ecr:ListImages", arn, {"repositoryName": repo}),
        (nobody.describe_images, "ecr:DescribeImages", arn, {"repositoryName": repo}),
        (nobody.batch_get_image, "ecr:BatchGetImage", arn, {"repositoryName": repo, "imageIds": [{"imageTag": "v1"}]}),
        (nobody.batch_delete_image, "ecr:BatchDeleteImage", arn,
         {"repositoryName": repo, "imageIds": [{"imageTag": "v1"}]}),
        (nobody.put_image, "ecr:PutImage", arn, {"repositoryName": repo, "imageManifest": manifest, "imageTag": "n"}),
        (nobody.initiate_layer_upload, "ecr:InitiateLayerUpload", arn, {"repositoryName": repo}),
        (nobody.batch_check_layer_availability, "ecr:BatchCheckLayerAvailability", arn,
         {"repositoryName": repo, "layerDigests": [layer]}),
        (nobody.get_download_url_for_layer, "ecr:GetDownloadUrlForLayer", arn,
         {"repositoryName": repo, "layerDigest": layer}),
        (nobody.list_tags_for_resource, "ecr:ListTagsForResource", arn, {"resourceArn": arn}),
        (nobody.tag_resource, "ecr:TagResource", arn, {"resourceArn": arn, "tags": [{"Key": "k", "Value": "v"}]}),
        (nobody.get_repository_policy, "ecr:GetRepositoryPolicy", arn, {"repositoryName": repo}),
        (nobody.set_repository_policy, "ecr:SetRepositoryPolicy", arn, {"repositoryName": repo, "policyText":
                                                                           repo_policy({"Effect": "Allow",
                                                                                        "Principal": "*",
                                                                                        "Action": "ecr:*"})}),
        (nobody.describe_registry, "ecr:DescribeRegistry", None, {}),
        (nobody.get_registry_policy, "ecr:GetRegistryPolicy", None, {}),
        (nobody.put_image_tag_mutability, "ecr:PutImageTagMutability", arn,
         {"repositoryName": repo, "imageTagMutability": "IMMUTABLE"}),
    ]
    for call, action, resource, kw in calls:
        denied(call, action, resource, **kw)
    # A repository that does not exist is denied, not reported missing: no probing for names.
    denied(nobody.list_images, "ecr:ListImages", world.arn("access/not-there"), repositoryName="access/not-there")
    rc, _, err = world.aws("nobody", "describe-images", "--repository-name", repo)
    assert rc != 0 and "AccessDeniedException" in err
    # Listing without names shows nothing rather than failing (Berth lists what the caller may see).
    assert nobody.describe_repositories()["repositories"] == []


def test_deleted_access_key_stops_working(world):
    """`berth admin delete-access-key` on a running server: the key is refused within the
    identity cache's lifetime (about 5 s), as UnrecognizedClientException."""
    user = new_user(world.data, "shortlived", world.account, ["AmazonEC2ContainerRegistryReadOnly"])
    world.users["shortlived"] = user
    client = world.ecr("shortlived")

    def answer() -> str:
        try:
            client.describe_repositories()
            return "ok"
        except ClientError as e:
            return e.response["Error"]["Code"]

    assert wait_for(lambda: answer() == "ok", 15), "a new access key was not accepted within 15 s"
    admin(world.data, "delete-access-key", "--id", user.key)
    assert wait_for(lambda: answer() != "ok", 15), "a deleted access key still works after 15 s"
    assert answer() == "UnrecognizedClientException"


def test_a_recreated_user_does_not_inherit_the_old_users_tokens(world):
    """A registry token speaks for the user it was made for: once that user is deleted and a
    new one is made under the same name, the old token is refused while the new user's works."""
    repo = new_repo(world, "access/recreated")
    push_image(world, repo, "v1", "recreated")
    first = new_user(world.data, "phoenix", world.account, ["AmazonEC2ContainerRegistryReadOnly"])
    world.users["phoenix"] = first
    r = v2(world, "GET", f"{repo}/manifests/v1", world.token("phoenix"))
    assert r.status_code == 200, r.text
    old = world.token("phoenix")
    time.sleep(1.1)  # tokens carry whole seconds; the new user is made in a later one
    admin(world.data, "delete-user", "--user", "phoenix")
    world.users["phoenix"] = new_user(world.data, "phoenix", world.account, ["AmazonEC2ContainerRegistryReadOnly"])
    # The token's user no longer exists: refused as unauthenticated (401), not merely denied.
    assert wait_for(lambda: v2(world, "GET", f"{repo}/manifests/v1", old).status_code == 401, 15), \
        "the deleted user's token still works for the new user of the same name"
    new = wait_for(lambda: _token_or_none(world, "phoenix"), 15)
    assert new and v2(world, "GET", f"{repo}/manifests/v1", new).status_code == 200


def _token_or_none(world, who):
    try:
        return world.token(who)
    except ClientError:
        return None


# ---------------------------------------------------------------------------------------------
# 6. condition keys
# ---------------------------------------------------------------------------------------------


def test_source_ip_condition_in_a_repository_policy(world):
    repo = new_repo(world, "access/fenced")
    _, manifest, _ = push_image(world, repo, "v1", "fenced")
    owner, ro, arn = world.ecr(), world.ecr("ro"), world.arn(repo)
    token = world.token("ro")

    def fence(cidr: str) -> None:
        owner.set_repository_policy(repositoryName=repo, policyText=repo_policy({
            "Sid": "OnlyFromInside", "Effect": "Deny", "Principal": "*", "Action": PULL_ACTIONS,
            "Condition": {"NotIpAddress": {"aws:SourceIp": cidr}}}))

    fence("10.0.0.0/8")  # requests come from 127.0.0.1: outside, so denied, whatever the identity allows
    denied(ro.batch_get_image, "ecr:BatchGetImage", arn, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    v2_denied(v2(world, "GET", f"{repo}/manifests/v1", token), "ecr:BatchGetImage", arn)
    denied(owner.batch_get_image, "ecr:BatchGetImage", arn, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    # Only the pull actions are fenced.
    assert ro.list_images(repositoryName=repo)["imageIds"]

    fence("127.0.0.0/8")  # now the caller is inside
    assert ro.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"] \
        == manifest
    assert v2(world, "GET", f"{repo}/manifests/v1", token).status_code == 200
    owner.delete_repository_policy(repositoryName=repo)


def test_principal_account_condition_grants_another_account(world):
    repo = new_repo(world, "access/byaccount")
    _, manifest, _ = push_image(world, repo, "v1", "byaccount")
    world.ecr().set_repository_policy(repositoryName=repo, policyText=repo_policy({
        "Sid": "AccountB", "Effect": "Allow", "Principal": "*", "Action": PULL_ACTIONS,
        "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT_B}}}))
    assert bob_can_pull(world, repo, manifest)
    carol = world.ecr("carol")
    denied(carol.batch_get_image, "ecr:BatchGetImage", world.arn(repo), registryId=world.account,
           repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    v2_denied(v2(world, "GET", f"{repo}/manifests/v1", world.token("carol"), host=world.registry_host()),
              "ecr:BatchGetImage", world.arn(repo))
    # "*" in a policy does not mean anonymous: a request without credentials is still 401.
    r = v2(world, "GET", f"{repo}/manifests/v1", None, host=world.registry_host())
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")


# ---------------------------------------------------------------------------------------------
# 7. secrets at rest
# ---------------------------------------------------------------------------------------------


def test_secret_access_keys_are_not_stored_in_plaintext(world):
    # The data dir's files and, on a cluster, a dump of its PostgreSQL database.
    blobs = {p: b for p, b in store.metadata_at_rest(world.data).items() if Path(p).name != "credentials"}
    assert any(Path(p).name == "meta.db" or p.startswith("pg_dump:") for p in blobs)
    secrets = [u.secret for u in world.users.values()] + [ADMIN_SECRET]
    for secret in secrets:
        for form in {secret.encode(), base64.b64encode(secret.encode()), secret.encode().hex().encode()}:
            hits = [str(p) for p, b in blobs.items() if form in b]
            assert not hits, f"a secret access key is readable in {hits}"
    # The key ids are there (so the search looks in the right place).
    assert any(world.users["ro"].key.encode() in b for b in blobs.values())


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


def test_berth_account_from_the_environment(tmp_path):
    """BERTH_ACCOUNT names the default account; account ids are 12 digits, leading zeros
    included."""
    for account in ["123456789012", "012345678901"]:
        env = dict(server_env(), BERTH_ACCOUNT=account)
        data = tmp_path / account
        out = admin(data, "list-accounts", env=env)
        assert {"AccountId": account, "Name": "default"} in json.loads(out)["Accounts"]
