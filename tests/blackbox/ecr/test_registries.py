"""A registry per account (issue 10), shown from outside with docker and the aws CLI.

Berth runs with `server.registry_domain = "berth-<random>.test"`; the test maps
`<A>.<domain>` and `<B>.<domain>` to 127.0.0.1 in /etc/hosts (and removes exactly those lines
afterwards). Account A is the default account (its administrator), account B is made with
`berth admin` (user `bob`, ECR full access in his own account).

* Each account creates `team/app` in its own registry, logs docker in to its own host with
  `aws ecr get-login-password`, pushes a distinct image, removes it and pulls its own bytes back.
* B (logged in to A's host with his own token) cannot pull A's image until A's repository
  policy grants B's account the pull actions; then the pull gives A's bytes.
* `describe-repositories --registry-id A` as B is AccessDeniedException until the policy also
  grants `ecr:DescribeRepositories`; `batch-get-image --registry-id` reads either registry.
* Over /v2 with plain HTTP, the Host header alone selects the registry: the two `team/app`
  repositories are independent.

Berth-only; needs root (/etc/hosts, dockerd) for the docker part.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import spawn_berth
from tools.berth import backend_env, berth_binary, secured_env
from tools.containers import docker_push_digest
from tools.dockerd import DockerDaemon, DockerUnavailable
from tools.etchosts import loopback_names, writable
from tools.images import docker_save_files, layer_tar, sha256_digest

ADMIN_KEY, ADMIN_SECRET = "AKIABERTHREGISTRY001", "berth-registries-admin-secret"
ACCOUNT_B = "444455556666"
REPO = "team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
CONTENT = {"A": b"the image of account A\n", "B": b"the image of account B, not A's\n"}


# ---------------------------------------------------------------------------------------------
# the server, its accounts and the host names
# ---------------------------------------------------------------------------------------------


def server_env(domain: str) -> dict[str, str]:
    return secured_env(ADMIN_KEY, ADMIN_SECRET, domain)


def admin(data: Path, env: dict[str, str], *args: str) -> str:
    r = subprocess.run([berth_binary(), "admin", "--data", str(data), *args], capture_output=True, text=True,
                       timeout=60, env=backend_env(data, env))
    assert r.returncode == 0, f"berth admin {' '.join(args)}: {r.stderr}"
    return r.stdout


@dataclass
class Party:
    """One account as its user sees it: the account id, the access key, its registry host."""
    label: str
    account: str
    key: str
    secret: str
    host: str  # <account>.<domain>:<port>

    def aws_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=self.key, AWS_SECRET_ACCESS_KEY=self.secret, AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
        return env


@dataclass
class Setup:
    url: str     # http://127.0.0.1:<port>
    port: int
    domain: str
    a: Party
    b: Party

    def aws(self, who: Party, *args: str) -> tuple[int, dict | None, str]:
        r = subprocess.run(["aws", "ecr", *args, "--endpoint-url", self.url, "--output", "json"],
                           capture_output=True, text=True, timeout=60, env=who.aws_env())
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr

    def aws_ok(self, who: Party, *args: str) -> dict | None:
        rc, out, err = self.aws(who, *args)
        assert rc == 0, f"aws ecr {' '.join(args)} as {who.label}: {err}"
        return out

    def password(self, who: Party) -> str:
        r = subprocess.run(["aws", "ecr", "get-login-password", "--endpoint-url", self.url], capture_output=True,
                           text=True, timeout=60, env=who.aws_env())
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not writable():
        pytest.skip("cannot add names to /etc/hosts (not root)")
    domain = f"berth-{uuid.uuid4().hex[:8]}.test"
    data = tmp_path_factory.mktemp("registries") / "data"
    env = server_env(domain)
    accounts = json.loads(admin(data, env, "list-accounts"))["Accounts"]
    account_a = next(a["AccountId"] for a in accounts if a["Name"] == "default")
    assert account_a != ACCOUNT_B
    admin(data, env, "create-account", "--name", "team-b", "--id", ACCOUNT_B)
    acct = ["--account", ACCOUNT_B]
    admin(data, env, "create-user", "--user", "bob", *acct)
    admin(data, env, "attach-policy", "--user", "bob", *acct, "--name", "AmazonEC2ContainerRegistryFullAccess")
    creds = admin(data, env, "create-access-key", "--user", "bob", *acct, "--profile", "bob")
    bob_key = re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1)
    bob_secret = re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1)

    with loopback_names([f"{account_a}.{domain}", f"{ACCOUNT_B}.{domain}"], f"berth test_registries.py {domain}"):
        proc = spawn_berth(data, env=env, anonymous=False)
        try:
            port = int(proc.url.rsplit(":", 1)[1])
            a = Party("A", account_a, ADMIN_KEY, ADMIN_SECRET, f"{account_a}.{domain}:{port}")
            b = Party("B", ACCOUNT_B, bob_key, bob_secret, f"{ACCOUNT_B}.{domain}:{port}")
            yield Setup(proc.url, port, domain, a, b)
        finally:
            alive = proc.alive()
            proc.stop()
            if not alive:
                print(f"\nBerth died during the module; log tail:\n{proc.log_tail()}")


# ---------------------------------------------------------------------------------------------
# docker: one private dockerd per account (its own image store and its own login)
# ---------------------------------------------------------------------------------------------


def docker_login(d: DockerDaemon, host: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", host], input=password,
                          capture_output=True, text=True, timeout=60, env={**os.environ, **d.env})


def image_files(d: DockerDaemon, ref: str, tmp: Path) -> dict[str, bytes]:
    """The regular files of the local image `ref` (from `docker save`: no container runtime)."""
    out = tmp / f"saved-{uuid.uuid4().hex[:8]}.tar"
    d.docker("save", "-o", out, ref)
    try:
        return docker_save_files(out)[1]
    finally:
        out.unlink(missing_ok=True)


def inspect(d: DockerDaemon, ref: str) -> dict:
    return json.loads(d.docker("image", "inspect", ref).stdout)[0]


@pytest.fixture(scope="module")
def daemons(setup):
    """One dockerd per account. Each is started after the /etc/hosts lines exist, and trusts
    plain HTTP to 127.0.0.0/8 (DockerDaemon's `--insecure-registry 127.0.0.0/8`), which docker
    matches after resolving `<account>.<domain>`."""
    started: dict[str, DockerDaemon] = {}
    try:
        for label in ("A", "B"):
            d = DockerDaemon()
            started[label] = d
            d.start()
    except DockerUnavailable as e:
        for d in started.values():
            d.stop()
        pytest.skip(f"cannot start a private dockerd: {e}")
    try:
        yield started
    finally:
        for d in started.values():
            d.stop()


@dataclass
class Pushed:
    uri: str      # <host>/team/app
    digest: str   # the manifest digest docker push printed
    image_id: str
    layer: bytes


@pytest.fixture(scope="module")
def pushed(setup, daemons, tmp_path_factory):
    """A and B each create `team/app` in their own registry, log docker in to their own host
    and push a distinct one-layer image as `v1`, then remove it locally."""
    tmp = tmp_path_factory.mktemp("images")
    out: dict[str, Pushed] = {}
    for who in (setup.a, setup.b):
        d = daemons[who.label]
        repo = setup.aws_ok(who, "create-repository", "--repository-name", REPO)["repository"]
        assert repo["registryId"] == who.account, repo
        assert repo["repositoryArn"] == f"arn:aws:ecr:us-east-1:{who.account}:repository/{REPO}", repo
        assert repo["repositoryUri"] == f"{who.host}/{REPO}", repo
        uri = repo["repositoryUri"]

        r = docker_login(d, who.host, setup.password(who))
        assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stdout + r.stderr
        layer = layer_tar([(f"account-{who.label}.txt", CONTENT[who.label])])
        tar = tmp / f"rootfs-{who.label}.tar"
        tar.write_bytes(layer)
        image_id = d.docker("import", tar, f"{uri}:v1").stdout.strip()
        tar.unlink()
        digest = docker_push_digest(d.docker("push", f"{uri}:v1").stdout, "v1")
        d.docker("rmi", f"{uri}:v1")
        assert d.docker("image", "inspect", f"{uri}:v1", check=False).returncode != 0
        out[who.label] = Pushed(uri, digest, image_id, layer)
    assert out["A"].digest != out["B"].digest
    return out


def cross_account_policy(b_account: str, actions: list[str]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "AccountBReads", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{b_account}:root"},
        "Action": actions}]})


def test_each_account_pushes_and_pulls_back_its_own_team_app(setup, daemons, pushed, tmp_path):
    for who in (setup.a, setup.b):
        d, mine = daemons[who.label], pushed[who.label]
        # The registry says what docker pushed, in the pusher's own registry.
        details = setup.aws_ok(who, "describe-images", "--repository-name", REPO)["imageDetails"]
        assert [(x["registryId"], x["imageDigest"], x["imageTags"]) for x in details] == [
            (who.account, mine.digest, ["v1"])], details
        # Pulled back from its own host: the same image, the same bytes.
        d.docker("pull", f"{mine.uri}:v1")
        info = inspect(d, f"{mine.uri}:v1")
        assert info["Id"] == mine.image_id
        assert f"{mine.uri}@{mine.digest}" in info["RepoDigests"], info["RepoDigests"]
        assert info["RootFS"]["Layers"] == [sha256_digest(mine.layer)]
        assert image_files(d, f"{mine.uri}:v1", tmp_path) == {f"account-{who.label}.txt": CONTENT[who.label]}
        d.docker("rmi", f"{mine.uri}:v1")
    # Each account lists only its own team/app, in its own registry.
    for who in (setup.a, setup.b):
        repos = setup.aws_ok(who, "describe-repositories")["repositories"]
        assert [(r["registryId"], r["repositoryName"], r["repositoryUri"]) for r in repos] == [
            (who.account, REPO, f"{who.host}/{REPO}")], repos


def test_login_token_names_each_requested_registry(setup):
    out = setup.aws_ok(setup.b, "get-authorization-token", "--registry-ids", setup.a.account, setup.b.account)
    endpoints = [x["proxyEndpoint"] for x in out["authorizationData"]]
    assert endpoints == [f"http://{setup.a.host}", f"http://{setup.b.host}"], out
    for x in out["authorizationData"]:
        assert base64.b64decode(x["authorizationToken"]).decode().startswith("AWS:")
    own = setup.aws_ok(setup.b, "get-authorization-token")["authorizationData"]
    assert [x["proxyEndpoint"] for x in own] == [f"http://{setup.b.host}"], own


def test_b_reads_a_team_app_only_as_a_policy_allows(setup, daemons, pushed, tmp_path):
    a, b = setup.a, setup.b
    d = daemons["B"]
    theirs, mine = pushed["A"], pushed["B"]
    a_ref = f"{theirs.uri}:v1"

    # B's token opens A's host (docker login authenticates; it does not authorize a pull)...
    r = docker_login(d, a.host, setup.password(b))
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stdout + r.stderr
    # ...but without a policy of A's, B can neither pull A's image nor see A's repository.
    r = d.docker("pull", a_ref, check=False)
    assert r.returncode != 0, r.stdout
    assert "denied" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    assert d.docker("image", "inspect", a_ref, check=False).returncode != 0
    rc, _, err = setup.aws(b, "describe-repositories", "--registry-id", a.account)
    assert rc != 0 and "AccessDeniedException" in err, err
    rc, _, err = setup.aws(b, "describe-repositories", "--registry-id", a.account, "--repository-names", REPO)
    assert rc != 0 and "AccessDeniedException" in err, err
    rc, _, err = setup.aws(b, "batch-get-image", "--registry-id", a.account, "--repository-name", REPO,
                           "--image-ids", "imageTag=v1")
    assert rc != 0 and "AccessDeniedException" in err and "ecr:BatchGetImage" in err, err

    # A allows B's account to pull (only): B pulls A's bytes; describe-repositories stays denied.
    setup.aws_ok(a, "set-repository-policy", "--repository-name", REPO, "--policy-text",
                 cross_account_policy(b.account, PULL_ACTIONS))
    out = d.docker("pull", a_ref).stdout
    assert theirs.digest in out, out
    info = inspect(d, a_ref)
    assert info["Id"] == theirs.image_id
    assert f"{theirs.uri}@{theirs.digest}" in info["RepoDigests"], info["RepoDigests"]
    assert image_files(d, a_ref, tmp_path) == {"account-A.txt": CONTENT["A"]}
    d.docker("rmi", a_ref)
    rc, _, err = setup.aws(b, "describe-repositories", "--registry-id", a.account)
    assert rc != 0 and "AccessDeniedException" in err, err

    # batch-get-image across accounts now answers A's image; naming B's registry, B's own.
    got = setup.aws_ok(b, "batch-get-image", "--registry-id", a.account, "--repository-name", REPO,
                       "--image-ids", "imageTag=v1")
    assert got["failures"] == [], got
    assert [(i["registryId"], i["repositoryName"], i["imageId"]) for i in got["images"]] == [
        (a.account, REPO, {"imageDigest": theirs.digest, "imageTag": "v1"})], got
    assert sha256_digest(got["images"][0]["imageManifest"].encode()) == theirs.digest
    got = setup.aws_ok(b, "batch-get-image", "--registry-id", b.account, "--repository-name", REPO,
                       "--image-ids", "imageTag=v1")
    assert got["failures"] == [], got
    assert [(i["registryId"], i["imageId"]) for i in got["images"]] == [
        (b.account, {"imageDigest": mine.digest, "imageTag": "v1"})], got
    assert sha256_digest(got["images"][0]["imageManifest"].encode()) == mine.digest

    # A also allows ecr:DescribeRepositories: B now sees A's team/app (and only in A's registry).
    setup.aws_ok(a, "set-repository-policy", "--repository-name", REPO, "--policy-text",
                 cross_account_policy(b.account, [*PULL_ACTIONS, "ecr:DescribeRepositories"]))
    repos = setup.aws_ok(b, "describe-repositories", "--registry-id", a.account)["repositories"]
    assert [(r["registryId"], r["repositoryName"], r["repositoryUri"]) for r in repos] == [
        (a.account, REPO, f"{a.host}/{REPO}")], repos
    repos = setup.aws_ok(b, "describe-repositories")["repositories"]
    assert [(r["registryId"], r["repositoryUri"]) for r in repos] == [(b.account, f"{b.host}/{REPO}")], repos

    # Granting reads granted no writes: B's push to A's team/app is refused, A's image unchanged.
    d.docker("pull", f"{mine.uri}:v1")
    d.docker("tag", f"{mine.uri}:v1", f"{theirs.uri}:from-b")
    r = d.docker("push", f"{theirs.uri}:from-b", check=False)
    assert r.returncode != 0 and "denied" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    d.docker("rmi", f"{mine.uri}:v1", f"{theirs.uri}:from-b")
    ids = setup.aws_ok(a, "list-images", "--repository-name", REPO)["imageIds"]
    assert ids == [{"imageDigest": theirs.digest, "imageTag": "v1"}], ids


# ---------------------------------------------------------------------------------------------
# /v2 with plain HTTP: the Host header selects the registry
# ---------------------------------------------------------------------------------------------


def token(setup: Setup, who: Party) -> str:
    user, password = base64.b64decode(
        setup.aws_ok(who, "get-authorization-token")["authorizationData"][0]["authorizationToken"]
    ).decode().split(":", 1)
    assert user == "AWS"
    return password


def test_host_header_selects_the_account_registry_over_v2(setup):
    """`iso/app` in A's and in B's registry, pushed and read over /v2 at 127.0.0.1 with only the
    Host header naming the registry (no name resolution involved)."""
    repo = "iso/app"
    s = requests.Session()
    s.trust_env = False
    parties = {"A": setup.a, "B": setup.b}
    tokens = {k: token(setup, p) for k, p in parties.items()}

    def v2(method: str, host: str, path: str, who: str, **kw) -> requests.Response:
        headers = {"Host": host, **kw.pop("headers", {})}
        return s.request(method, f"{setup.url}/v2/{path}", headers=headers, auth=("AWS", tokens[who]), timeout=10,
                         **kw)

    images = {}
    for k, who in parties.items():
        setup.aws_ok(who, "create-repository", "--repository-name", repo)
        layer = f"layer of {k}\n".encode()
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"account": k}}}).encode()
        for blob in (cfg, layer):
            r = v2("POST", who.host, f"{repo}/blobs/uploads/?digest={sha256_digest(blob)}", k, data=blob)
            assert r.status_code == 201, (r.status_code, r.text)
            assert r.headers["Location"].endswith(f"/v2/{repo}/blobs/{sha256_digest(blob)}"), r.headers
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(cfg),
                       "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(layer),
                        "size": len(layer)}]})
        r = v2("PUT", who.host, f"{repo}/manifests/v1", k, data=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, (r.status_code, r.text)
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        assert r.headers["Docker-Content-Digest"] == digest
        images[k] = (manifest, digest, layer)
    assert images["A"][1] != images["B"][1]

    for k, who in parties.items():
        manifest, digest, layer = images[k]
        other = images["B" if k == "A" else "A"]
        # Its own host serves its own manifest and layer, by tag and by digest...
        r = v2("GET", who.host, f"{repo}/manifests/v1", k, headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.text == manifest, (r.status_code, r.text)
        assert r.headers["Docker-Content-Digest"] == digest
        assert v2("GET", who.host, f"{repo}/manifests/{digest}", k).text == manifest
        assert v2("GET", who.host, f"{repo}/blobs/{sha256_digest(layer)}", k).content == layer
        assert v2("GET", who.host, f"{repo}/tags/list", k).json() == {"name": repo, "tags": ["v1"]}
        # ...and nothing of the other account's repository of the same name.
        r = v2("GET", who.host, f"{repo}/manifests/{other[1]}", k)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN", (r.status_code, r.text)
        r = v2("HEAD", who.host, f"{repo}/blobs/{sha256_digest(other[2])}", k)
        assert r.status_code == 404, r.status_code
        # The bare address (any host outside the domain) is the caller's own registry.
        r = s.get(f"{setup.url}/v2/{repo}/manifests/v1", auth=("AWS", tokens[k]), headers={"Accept": OCI_MANIFEST},
                  timeout=10)
        assert r.status_code == 200 and r.text == manifest, (r.status_code, r.text)
        # The ECR API agrees, registry by registry.
        got = setup.aws_ok(setup.a if k == "A" else setup.b, "batch-get-image", "--registry-id", who.account,
                           "--repository-name", repo, "--image-ids", "imageTag=v1")
        assert got["images"][0]["imageManifest"] == manifest

    # The other account's host, with no policy of its owner: denied, for a read and for a write.
    for k, other_host in (("A", setup.b.host), ("B", setup.a.host)):
        for method, path in (("GET", f"{repo}/manifests/v1"), ("POST", f"{repo}/blobs/uploads/")):
            r = v2(method, other_host, path, k)
            assert r.status_code == 403, (k, method, r.status_code, r.text)
            assert r.json()["errors"][0]["code"] == "DENIED", r.text
    # An account id with no account behind it is just another owner that allows nothing (as in
    # ECR, the answer does not tell whether the account exists).
    r = v2("GET", f"999999999999.{setup.domain}:{setup.port}", f"{repo}/manifests/v1", "A")
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", (r.status_code, r.text)
