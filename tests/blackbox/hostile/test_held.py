"""Attacks on Berth that HELD, each pinned as a test so that none can regress.

Berth was attacked from outside (forged registry tokens, tampered download URLs and SigV4
signatures, path tricks, malformed requests, kill -9 under load) and as an insider of another
account or with a read-only policy. For each attack the test asserts the precise answer the
server gives now: the status and the error code in the protocol's shape (OCI
`{"errors":[{"code":...}]}` on /v2, AWS JSON `__type` + `x-amzn-ErrorType` on the ECR API), that
no data leaks, that nothing changed (checked with an administrator's read afterwards), and that
the server is still alive.

Berth-only: the server is started here without --anonymous, with accounts, users and access
keys made with `berth admin` before it starts, and with a `server.registry_domain`: every account
owns its registry (issue 10), so the insider of account B attacks A's repositories where they
are, on A's host (`<A>.<domain>:<port>`, sent to 127.0.0.1 as a Host header) and with
`registryId` = A on the ECR API.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import spawn_berth
from hostile.helpers import (ACCOUNT_B, ADMIN_KEY, ADMIN_SECRET, ECR_CT, ECR_PREFIX, OCI_MANIFEST,
                             TIMEOUT, World, admin, aws_error, data_files, default_account,
                             ecr_raw, image, new_key, new_user, oci_error, push, server_env,
                             sha256, sign, tree)
from tools import rawhttp, store

DESCRIBE = "DescribeRepositories"
TOKEN_CONTEXT = b"berth registry token v1\n"   # crates/auth/src/token.rs
DOMAIN = "held.berth.test"   # server.registry_domain; no name resolution needed (Host headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Account A (the default one: the administrator, `ro` with the managed ReadOnly policy)
    and account B (`bob`, with FullAccess over his own account). The administrator owns
    `team/app` (image `v1`) and `team/hidden-name-7f3a`; bob owns `bee/own` (image `b1`)."""
    root = tmp_path_factory.mktemp("held")
    data = root / "data"
    account = default_account(data)
    assert json.loads(admin(data, "create-account", "--name", "team-b", "--id", ACCOUNT_B))["AccountId"] == ACCOUNT_B
    users = {
        "ro": new_user(data, "ro", account, ["AmazonEC2ContainerRegistryReadOnly"]),
        "bob": new_user(data, "bob", ACCOUNT_B, ["AmazonEC2ContainerRegistryFullAccess"]),
    }
    proc = spawn_berth(data, env=server_env(DOMAIN), anonymous=False)
    w = World(proc.url, data, account, proc, users, DOMAIN)
    w.ecr().create_repository(repositoryName="team/app")
    w.ecr().create_repository(repositoryName="team/hidden-name-7f3a")
    w.ecr("bob").create_repository(repositoryName="bee/own")
    w.admin_token = w.token()
    w.app_manifest, w.app_layer = push(w, "team/app", "v1", "app-v1", w.admin_token)
    w.bee_manifest, w.bee_layer = push(w, "bee/own", "b1", "bee-b1", w.token("bob"))
    yield w
    alive = proc.alive()
    proc.stop()
    assert alive, f"berth died during the module; log tail:\n{proc.log_tail()}"


@pytest.fixture(autouse=True)
def _alive_after(request):
    yield
    if "world" in request.fixturenames:
        w = request.getfixturevalue("world")
        assert w.proc.alive(), f"berth died; log tail:\n{w.proc.log_tail()}"
        r = requests.get(w.url + "/v2/", auth=("AWS", w.admin_token), timeout=TIMEOUT)
        assert r.status_code == 200, (r.status_code, r.text)


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def mint(key: bytes, expires: int, account: str, arn: str) -> str:
    """A registry token made exactly as crates/auth/src/token.rs makes them."""
    payload = f"{expires}:{account}:{arn}".encode()
    return b64u(payload) + "." + b64u(hmac.new(key, TOKEN_CONTEXT + payload, hashlib.sha256).digest())


def flip(s: str, i: int) -> str:
    """``s`` with its ``i``-th character replaced by another base64url character."""
    c = s[i]
    return s[:i] + ("B" if c != "B" else "C") + s[i + 1:]


def admin_arn(w: World) -> str:
    return f"arn:aws:iam::{w.account}:user/berth-admin"


def assert_unauthorized(r: requests.Response, secrets=()):
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic realm="), dict(r.headers)
    assert oci_error(r) == "UNAUTHORIZED", r.text
    for s in secrets:
        assert s not in r.text, f"401 body leaks {s!r}: {r.text[:300]}"


def assert_denied(r: requests.Response, action: str):
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert oci_error(r) == "DENIED", r.text
    assert action in r.json()["errors"][0]["message"], r.text


def ecr_denied(call, action, **kw) -> None:
    """``call(**kw)`` is AccessDeniedException naming ``action`` (one of them, if a tuple)."""
    with pytest.raises(ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    assert err["Code"] == "AccessDeniedException", (action, err)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.value.response
    actions = action if isinstance(action, tuple) else (action,)
    assert any(f"not authorized to perform: {a} " in err["Message"] for a in actions), err


# ---------------------------------------------------------------------------------------------
# registry tokens: forged, altered, expired, under another user name
# ---------------------------------------------------------------------------------------------


def forged_tokens(w: World) -> dict[str, tuple[str, str]]:
    """name -> (Basic user, password). None of them may get in."""
    tok = w.admin_token
    p, m = tok.split(".")
    payload = unb64u(p).decode()
    expires, account, arn = payload.split(":", 2)
    key = (w.data / "token.key").read_bytes()
    later = int(expires) + 86400
    return {
        "payload byte flipped": ("AWS", flip(p, 5) + "." + m),
        "mac byte flipped": ("AWS", p + "." + flip(m, 10)),
        "last byte flipped": ("AWS", tok[:-1] + ("A" if tok[-1] != "A" else "B")),
        "truncated mac": ("AWS", tok[:-4]),
        "payload only": ("AWS", p),
        "payload and dot": ("AWS", p + "."),
        "mac only": ("AWS", "." + m),
        "expiry extended, old mac": ("AWS", b64u(f"{later}:{account}:{arn}".encode()) + "." + m),
        "other account claimed, old mac": (
            "AWS", b64u(f"{expires}:{ACCOUNT_B}:arn:aws:iam::{ACCOUNT_B}:user/bob".encode()) + "." + m),
        "re-signed with zero key": ("AWS", mint(bytes(32), later, account, arn)),
        "re-signed with admin secret": ("AWS", mint(ADMIN_SECRET.encode(), later, account, arn)),
        "re-signed with key+1": ("AWS", mint(bytes((key[0] ^ 1,)) + key[1:], int(expires), account, arn)),
        "expired (real key)": ("AWS", mint(key, int(time.time()) - 5, account, arn)),
        "expired long ago (real key)": ("AWS", mint(key, 1, account, arn)),
        "user name not AWS": ("berth-admin", tok),
        "user name lowercase aws": ("aws", tok),
        "empty password": ("AWS", ""),
        "garbage": ("AWS", "x.y"),
        "padding appended": ("AWS", tok + "=="),
    }


def test_forged_registry_tokens_are_refused(world):
    """Every forged, altered, truncated, re-signed or expired registry token and every other
    user name than `AWS` gets 401 with the Basic challenge and no data: on the manifest, the
    blob, the tags list, the catalog, an upload and a delete."""
    w = world
    key = (w.data / "token.key").read_bytes()
    # Control: the crafting is right (minted here with the real key, the administrator's token
    # comes out byte for byte, and one a second younger works), so the "expired" variants fail
    # on their expiry alone.
    expires = int(unb64u(w.admin_token.split(".")[0]).decode().split(":")[0])
    assert mint(key, expires, w.account, admin_arn(w)) == w.admin_token
    fresh = mint(key, expires + 1, w.account, admin_arn(w))
    assert w.v2("GET", "team/app/manifests/v1", fresh, headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert w.v2("GET", "team/app/manifests/v1", w.admin_token,
                headers={"Accept": OCI_MANIFEST}).status_code == 200
    cfg, layer, manifest = image("forged-write")
    secrets = ["v1", w.app_manifest.split(":")[1], "hidden-name-7f3a"]
    attempts = 0
    for name, (user, password) in forged_tokens(w).items():
        requests_ = [
            ("GET", "team/app/manifests/v1", {}),
            ("GET", f"team/app/blobs/{w.app_layer}", {}),
            ("GET", "team/app/tags/list", {}),
            ("GET", "_catalog", {}),
            ("POST", f"team/app/blobs/uploads/?digest={sha256(layer)}", {"data": layer}),
            ("PUT", "team/app/manifests/forged", {"data": manifest,
                                                  "headers": {"Content-Type": OCI_MANIFEST}}),
            ("DELETE", f"team/app/manifests/{w.app_manifest}", {}),
        ]
        for method, path, kw in requests_:
            r = w.v2(method, path, password, user=user, **kw)
            attempts += 1
            try:
                assert_unauthorized(r, secrets)
            except AssertionError as e:
                raise AssertionError(f"{name}: {method} {path}: {e}") from None
            if name.startswith("expired"):
                assert "expired" in r.json()["errors"][0]["message"], (name, r.text)
    assert attempts == 19 * 7
    # Nothing was written or deleted.
    r = w.v2("GET", "team/app/tags/list", w.admin_token)
    assert r.json()["tags"] == ["v1"], r.text
    r = w.v2("HEAD", f"team/app/blobs/{sha256(layer)}", w.admin_token)
    assert r.status_code == 404


def test_registry_token_is_refused_on_the_ecr_api(world):
    """A registry token is not an AWS credential: as a SigV4 access key it is unknown, and sent
    as a bearer token the ECR API does not take it."""
    w = world
    r = ecr_raw(w.url, DESCRIBE, {}, "AWS", w.admin_token)
    assert (r.status_code, aws_error(r)) == (403, "UnrecognizedClientException")
    r = requests.post(w.url + "/", data=b"{}", timeout=TIMEOUT, headers={
        "Content-Type": ECR_CT, "X-Amz-Target": ECR_PREFIX + DESCRIBE,
        "Authorization": "Bearer " + w.admin_token})
    assert r.status_code in (400, 403), r.text
    assert aws_error(r) == "IncompleteSignatureException", r.text
    assert "team/app" not in r.text


# ---------------------------------------------------------------------------------------------
# cross-account: bob (account B, FullAccess in B) against account A's repository
# ---------------------------------------------------------------------------------------------


def test_cross_account_v2(world):
    """Bob (account B) on A's host, with his own valid token: every read and write of A's
    `team/app` is DENIED, naming the action, and leaks nothing; on the bare address (his own
    registry) A's repository does not exist for him."""
    w = world
    tok = w.token("bob")
    a_host = w.registry_host()
    hdr = {"Accept": OCI_MANIFEST}
    cfg, layer, manifest = image("bob-into-a")

    def on_a(method, path, **kw):
        return w.v2(method, path, tok, host=a_host, **kw)

    checks = [
        (on_a("GET", "team/app/tags/list"), "ecr:ListImages"),
        (on_a("GET", "team/app/manifests/v1", headers=hdr), "ecr:BatchGetImage"),
        (on_a("GET", f"team/app/manifests/{w.app_manifest}", headers=hdr), "ecr:BatchGetImage"),
        (on_a("GET", f"team/app/blobs/{w.app_layer}"), "ecr:GetDownloadUrlForLayer"),
        (on_a("POST", "team/app/blobs/uploads/"), "ecr:InitiateLayerUpload"),
        (on_a("POST", f"team/app/blobs/uploads/?digest={sha256(layer)}", data=layer), "ecr:InitiateLayerUpload"),
        (on_a("POST", f"team/app/blobs/uploads/?mount={w.bee_layer}&from=bee/own"), "ecr:CompleteLayerUpload"),
        (on_a("PUT", "team/app/manifests/v1", data=manifest, headers={"Content-Type": OCI_MANIFEST}),
         "ecr:PutImage"),
        (on_a("DELETE", "team/app/manifests/v1"), "ecr:BatchDeleteImage"),
        (on_a("DELETE", f"team/app/manifests/{w.app_manifest}"), "ecr:BatchDeleteImage"),
    ]
    for r, action in checks:
        assert_denied(r, action)
        assert w.app_manifest.split(":")[1] not in r.text
    for method in ("HEAD",):
        r = on_a(method, "team/app/manifests/v1", headers=hdr)
        assert r.status_code == 403 and "Docker-Content-Digest" not in r.headers, dict(r.headers)
        r = on_a(method, f"team/app/blobs/{w.app_layer}")
        assert r.status_code == 403 and r.headers.get("Docker-Content-Digest") is None, dict(r.headers)
        assert r.headers.get("Content-Length") != "1500", dict(r.headers)  # not the layer's size
    # The catalog of his own registry shows bob his own repository; A's shows him nothing.
    r = w.v2("GET", "_catalog", tok)
    assert r.status_code == 200 and r.json()["repositories"] == ["bee/own"], r.text
    r = on_a("GET", "_catalog")
    assert r.status_code == 200 and r.json()["repositories"] == [], r.text
    # On the bare address bob is in his own registry, where A's team/app does not exist.
    r = w.v2("GET", "team/app/tags/list", tok)
    assert r.status_code == 404 and oci_error(r) == "NAME_UNKNOWN", r.text
    assert ACCOUNT_B in r.text and w.account not in r.text, r.text
    # And A's image is untouched.
    r = w.v2("GET", "team/app/manifests/v1", w.admin_token, headers=hdr)
    assert r.status_code == 200 and sha256(r.content) == w.app_manifest
    assert w.v2("GET", "team/app/tags/list", w.admin_token).json()["tags"] == ["v1"]
    assert w.v2("GET", "team/app/tags/list", w.admin_token, host=a_host).json()["tags"] == ["v1"]


def test_cross_account_ecr(world):
    w = world
    b = w.ecr("bob")
    repo = dict(repositoryName="team/app", registryId=w.account)
    layer = image("bob-ecr")[1]
    calls = [
        (b.list_images, "ecr:ListImages", repo),
        (b.describe_images, "ecr:DescribeImages", repo),
        (b.batch_get_image, "ecr:BatchGetImage", {**repo, "imageIds": [{"imageTag": "v1"}]}),
        (b.get_download_url_for_layer, "ecr:GetDownloadUrlForLayer", {**repo, "layerDigest": w.app_layer}),
        (b.batch_check_layer_availability, "ecr:BatchCheckLayerAvailability",
         {**repo, "layerDigests": [w.app_layer]}),
        (b.initiate_layer_upload, "ecr:InitiateLayerUpload", repo),
        (b.put_image, "ecr:PutImage", {**repo, "imageManifest": image("bob-ecr")[2].decode(),
                                       "imageTag": "v1"}),
        (b.batch_delete_image, "ecr:BatchDeleteImage", {**repo, "imageIds": [{"imageTag": "v1"}]}),
        (b.delete_repository, "ecr:DeleteRepository", {**repo, "force": True}),
        (b.get_repository_policy, "ecr:GetRepositoryPolicy", repo),
        (b.set_repository_policy, "ecr:SetRepositoryPolicy", {**repo, "policyText": json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                    "Action": "ecr:*"}]})}),
        (b.delete_repository_policy, "ecr:DeleteRepositoryPolicy", repo),
        (b.get_lifecycle_policy, "ecr:GetLifecyclePolicy", repo),
        (b.list_tags_for_resource, "ecr:ListTagsForResource",
         {"resourceArn": f"arn:aws:ecr:us-east-1:{w.account}:repository/team/app"}),
        (b.tag_resource, "ecr:TagResource",
         {"resourceArn": f"arn:aws:ecr:us-east-1:{w.account}:repository/team/app",
          "tags": [{"Key": "owner", "Value": "bob"}]}),
    ]
    for call, action, kw in calls:
        ecr_denied(call, action, **kw)
    # Without registryId bob addresses his own registry (every account owns one), where A's
    # team/app does not exist.
    for call, kw in [(b.list_images, {}), (b.batch_get_image, {"imageIds": [{"imageTag": "v1"}]}),
                     (b.describe_repositories, {"repositoryNames": ["team/app"]})]:
        with pytest.raises(ClientError) as e:
            call(**({"repositoryName": "team/app"} if "repositoryNames" not in kw else {}), **kw)
        err = e.value.response["Error"]
        assert err["Code"] == "RepositoryNotFoundException", err
        assert err["Message"] == ("The repository with name 'team/app' does not exist in the registry with id "
                                  f"'{ACCOUNT_B}'"), err
    # Listing reveals nothing of A: bob's own registry, and A's named explicitly (denied, whether
    # the name exists there or not).
    names = [r["repositoryName"] for r in b.describe_repositories()["repositories"]]
    assert names == ["bee/own"], names
    ecr_denied(b.describe_repositories, "ecr:DescribeRepositories", registryId=w.account)
    for name in ("team/hidden-name-7f3a", "team/no-such-name"):
        ecr_denied(b.describe_repositories, "ecr:DescribeRepositories", registryId=w.account,
                   repositoryNames=[name])
    # Untouched, as the administrator sees it.
    a = w.ecr()
    imgs = a.describe_images(repositoryName="team/app")["imageDetails"]
    assert [(i["imageDigest"], i["imageTags"]) for i in imgs] == [(w.app_manifest, ["v1"])]
    with pytest.raises(ClientError) as e:
        a.get_repository_policy(repositoryName="team/app")
    assert e.value.response["Error"]["Code"] == "RepositoryPolicyNotFoundException"
    assert a.list_tags_for_resource(
        resourceArn=f"arn:aws:ecr:us-east-1:{w.account}:repository/team/app")["tags"] == []


# ---------------------------------------------------------------------------------------------
# read-only user of the same account
# ---------------------------------------------------------------------------------------------


def test_readonly_cannot_push_on_v2(world):
    w = world
    tok = w.token("ro")
    cfg, layer, manifest = image("ro-push")
    before = data_files(w.data)
    # ro may read...
    r = w.v2("GET", "team/app/manifests/v1", tok, headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and sha256(r.content) == w.app_manifest
    # ...but not write, not even into an upload session the administrator started.
    r = w.v2("POST", "team/app/blobs/uploads/", w.admin_token)
    assert r.status_code == 202, r.text
    session = rawhttp.absolute(w.url, r.headers["Location"])
    checks = [
        (w.v2("POST", "team/app/blobs/uploads/", tok), "ecr:InitiateLayerUpload"),
        (w.v2("POST", f"team/app/blobs/uploads/?digest={sha256(layer)}", tok, data=layer),
         "ecr:InitiateLayerUpload"),
        (w.v2("POST", f"team/app/blobs/uploads/?mount={w.app_layer}&from=team/app", tok),
         "ecr:CompleteLayerUpload"),
        (w.v2("PATCH", session, tok, data=layer, headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"0-{len(layer) - 1}"}),
         "ecr:UploadLayerPart"),
        (w.v2("PUT", session + ("&" if "?" in session else "?") + f"digest={sha256(layer)}", tok,
              data=layer), "ecr:CompleteLayerUpload"),
        (w.v2("PUT", "team/app/manifests/v1", tok, data=manifest,
              headers={"Content-Type": OCI_MANIFEST}), "ecr:PutImage"),
        (w.v2("PUT", "team/app/manifests/ro-tag", tok, data=manifest,
              headers={"Content-Type": OCI_MANIFEST}), "ecr:PutImage"),
        (w.v2("DELETE", "team/app/manifests/v1", tok), "ecr:BatchDeleteImage"),
        (w.v2("DELETE", f"team/app/manifests/{w.app_manifest}", tok), "ecr:BatchDeleteImage"),
        (w.v2("DELETE", f"team/app/blobs/{w.app_layer}", tok), "ecr:BatchDeleteImage"),
        (w.v2("DELETE", session, tok), "ecr:"),
    ]
    for r, action in checks:
        assert_denied(r, action)
    # Nothing changed: same tags, same manifest, the admin's session still empty, no new blob.
    r = w.v2("GET", session, w.admin_token)
    assert r.status_code == 204 and r.headers.get("Range") in (None, "0-0", "0--1"), (r.status_code, r.headers)
    assert w.v2("GET", "team/app/tags/list", w.admin_token).json()["tags"] == ["v1"]
    assert w.v2("HEAD", f"team/app/blobs/{sha256(layer)}", w.admin_token).status_code == 404
    assert w.v2("HEAD", f"team/app/blobs/{w.app_layer}", w.admin_token).status_code == 200
    after = data_files(w.data)
    blobs = lambda files: {k: v for k, v in files.items() if k.startswith("blobs/")}  # noqa: E731
    assert blobs(after) == blobs(before)
    assert w.v2("DELETE", session, w.admin_token).status_code == 204


def test_readonly_cannot_push_on_ecr(world):
    w = world
    ro = w.ecr("ro")
    a = w.ecr()
    cfg, layer, manifest = image("ro-ecr")
    up = a.initiate_layer_upload(repositoryName="team/app")["uploadId"]
    repo = dict(repositoryName="team/app")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]})
    calls = [
        (ro.initiate_layer_upload, "ecr:InitiateLayerUpload", repo),
        (ro.upload_layer_part, "ecr:UploadLayerPart", {**repo, "uploadId": up, "partFirstByte": 0,
                                                       "partLastByte": len(layer) - 1,
                                                       "layerPartBlob": layer}),
        # (Berth names ecr:UploadLayerPart here: see test_complete_layer_upload_denial_names_its_action)
        (ro.complete_layer_upload, ("ecr:CompleteLayerUpload", "ecr:UploadLayerPart"), {**repo, "uploadId": up,
                                                               "layerDigests": [sha256(layer)]}),
        (ro.put_image, "ecr:PutImage", {**repo, "imageManifest": manifest.decode(), "imageTag": "ro"}),
        (ro.put_image, "ecr:PutImage", {**repo, "imageManifest": manifest.decode(), "imageTag": "v1"}),
        (ro.batch_delete_image, "ecr:BatchDeleteImage", {**repo, "imageIds": [{"imageTag": "v1"}]}),
        (ro.batch_delete_image, "ecr:BatchDeleteImage",
         {**repo, "imageIds": [{"imageDigest": w.app_manifest}]}),
        (ro.set_repository_policy, "ecr:SetRepositoryPolicy", {**repo, "policyText": policy}),
        (ro.delete_repository, "ecr:DeleteRepository", {**repo, "force": True}),
        (ro.delete_repository, "ecr:DeleteRepository", {"repositoryName": "team/hidden-name-7f3a"}),
        (ro.create_repository, "ecr:CreateRepository", {"repositoryName": "team/ro-made"}),
        (ro.put_image_tag_mutability, "ecr:PutImageTagMutability",
         {**repo, "imageTagMutability": "IMMUTABLE"}),
        (ro.put_lifecycle_policy, "ecr:PutLifecyclePolicy", {**repo, "lifecyclePolicyText": json.dumps(
            {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                         "countNumber": 1}, "action": {"type": "expire"}}]})}),
        (ro.put_registry_policy, "ecr:PutRegistryPolicy", {"policyText": policy}),
        (ro.tag_resource, "ecr:TagResource", {"resourceArn": f"arn:aws:ecr:us-east-1:{w.account}:repository/team/app",
                                              "tags": [{"Key": "k", "Value": "v"}]}),
    ]
    for call, action, kw in calls:
        ecr_denied(call, action, **kw)
    # Reads are allowed (so the denials above are about writing, not a broken user).
    assert ro.list_images(**repo)["imageIds"] == [{"imageDigest": w.app_manifest, "imageTag": "v1"}]
    # Nothing changed, as the administrator reads it.
    names = sorted(r["repositoryName"] for r in a.describe_repositories()["repositories"])
    assert names == ["team/app", "team/hidden-name-7f3a"], names
    detail = a.describe_repositories(repositoryNames=["team/app"])["repositories"][0]
    assert detail["imageTagMutability"] == "MUTABLE"
    imgs = a.describe_images(**repo)["imageDetails"]
    assert [(i["imageDigest"], i["imageTags"]) for i in imgs] == [(w.app_manifest, ["v1"])]
    for get, code in [(a.get_repository_policy, "RepositoryPolicyNotFoundException"),
                      (a.get_lifecycle_policy, "LifecyclePolicyNotFoundException")]:
        with pytest.raises(ClientError) as e:
            get(**repo)
        assert e.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as e:
        a.get_registry_policy()
    assert e.value.response["Error"]["Code"] == "RegistryPolicyNotFoundException"
    check = a.batch_check_layer_availability(**repo, layerDigests=[sha256(layer)])
    assert not any(x.get("layerAvailability") == "AVAILABLE" for x in check["layers"]), check
    assert [f["failureCode"] for f in check["failures"]] == ["MissingLayerDigest"], check
    # The administrator's upload is still empty: completing it says so.
    with pytest.raises(ClientError) as e:
        a.complete_layer_upload(**repo, uploadId=up, layerDigests=[sha256(layer)])
    assert e.value.response["Error"]["Code"] == "EmptyUploadException"


def test_complete_layer_upload_denial_names_its_action(world):
    w = world
    up = w.ecr().initiate_layer_upload(repositoryName="team/app")["uploadId"]
    ecr_denied(w.ecr("ro").complete_layer_upload, "ecr:CompleteLayerUpload", repositoryName="team/app",
               uploadId=up, layerDigests=[sha256(b"x")])


# ---------------------------------------------------------------------------------------------
# GetDownloadUrlForLayer URLs, tampered with
# ---------------------------------------------------------------------------------------------


def test_download_url_tampering(world):
    w = world
    url = w.ecr().get_download_url_for_layer(repositoryName="team/app", layerDigest=w.app_layer)["downloadUrl"]
    # The URL names the owner's registry host; it is sent to 127.0.0.1 with that Host header.
    assert urlsplit(url).netloc == w.registry_host(), url
    good = w.v2("GET", url)
    assert good.status_code == 200 and sha256(good.content) == w.app_layer
    u = urlsplit(url)
    q = dict(parse_qsl(u.query))
    sig, exp, cred = q["X-Berth-Signature"], q["X-Berth-Expires"], q["X-Berth-Credential"]
    cfg_digest = json.loads(w.v2("GET", "team/app/manifests/v1", w.admin_token,
                                 headers={"Accept": OCI_MANIFEST}).content)["config"]["digest"]

    def mk(path=u.path, drop=(), **change):
        qq = {**q, **change}
        return f"{u.scheme}://{u.netloc}{path}?" + urlencode({k: v for k, v in qq.items() if k not in drop})

    bob_cred = b64u(f"{ACCOUNT_B}:arn:aws:iam::{ACCOUNT_B}:user/bob".encode())
    tampered = {
        "other blob, same repo": mk(u.path.replace(w.app_layer, cfg_digest)),
        "other repo, other account's blob": mk(f"/v2/bee/own/blobs/{w.bee_layer}"),
        "other repo, same blob": mk(u.path.replace("team/app", "bee/own")),
        "hidden repo": mk(u.path.replace("team/app", "team/hidden-name-7f3a")),
        "manifest instead of blob": mk(f"/v2/team/app/manifests/{w.app_manifest}"),
        "tags list": mk("/v2/team/app/tags/list"),
        "catalog": mk("/v2/_catalog"),
        "expiry +1s": mk(**{"X-Berth-Expires": str(int(exp) + 1)}),
        "expiry +1 year": mk(**{"X-Berth-Expires": str(int(exp) + 365 * 86400)}),
        "expiry in the past": mk(**{"X-Berth-Expires": "1000000000"}),
        "expiry not a number": mk(**{"X-Berth-Expires": exp + "x"}),
        "signature byte flipped": mk(**{"X-Berth-Signature": flip(sig, 3)}),
        "signature truncated": mk(**{"X-Berth-Signature": sig[:-2]}),
        "signature empty": mk(**{"X-Berth-Signature": ""}),
        "credential of bob": mk(**{"X-Berth-Credential": bob_cred}),
        "credential byte flipped": mk(**{"X-Berth-Credential": flip(cred, 4)}),
        "credential dropped": mk(drop=("X-Berth-Credential",)),
        "expiry dropped": mk(drop=("X-Berth-Expires",)),
        "path with trailing dot segment": mk(u.path + "/."),
        "uppercase digest": mk(u.path.replace(w.app_layer, w.app_layer.upper())),
    }
    for name, bad in tampered.items():
        r = w.v2("GET", bad)
        assert r.status_code in (401, 400, 404), (name, r.status_code, r.text[:200])
        if r.status_code == 401:
            assert oci_error(r) == "UNAUTHORIZED", (name, r.text)
            assert r.headers.get("WWW-Authenticate", "").startswith("Basic realm="), name
        elif r.status_code == 404:
            # No route (e.g. a trailing dot segment): the spec's NAME_UNKNOWN, "no such endpoint".
            assert oci_error(r) == "NAME_UNKNOWN" and "no such endpoint" in r.text, (name, r.text)
        else:
            assert oci_error(r) in ("DIGEST_INVALID", "NAME_INVALID"), (name, r.text)
        assert good.content not in r.content, name
        assert "bee/own" not in r.text and "hidden-name" not in r.text, (name, r.text)
    # A signed URL carries no rights to write: DELETE, PUT, PATCH, POST with it are refused.
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        r = w.v2(method, url)
        assert r.status_code in (401, 405), (method, r.status_code, r.text)
        assert oci_error(r) == ("UNAUTHORIZED" if r.status_code == 401 else "UNSUPPORTED"), (method, r.text)
    # Sent with another user's registry token, the URL's signature does not widen bob's rights.
    r = w.v2("GET", url, w.token("bob"))
    assert_denied(r, "ecr:GetDownloadUrlForLayer")
    # On another account's host the URL is a URL for that host's registry: its signer (A's
    # administrator) is denied there as anywhere B's policies do not allow him, and gets nothing.
    for other in (ACCOUNT_B, "999999999999"):
        r = w.v2("GET", url, headers={"Host": w.registry_host(other)})
        assert_denied(r, "ecr:GetDownloadUrlForLayer")
        assert f":{other}:repository/team/app" in r.text, r.text
        assert good.content not in r.content
    # The untouched URL still works, and the blob is intact.
    r = w.v2("GET", url)
    assert r.status_code == 200 and r.content == good.content
    assert w.v2("HEAD", f"team/app/blobs/{w.app_layer}", w.admin_token).status_code == 200


# ---------------------------------------------------------------------------------------------
# path tricks on /v2 (sent raw: no client-side normalisation of dot segments)
# ---------------------------------------------------------------------------------------------

NAME_BAD = (400, "NAME_INVALID")
DIGEST_BAD = (400, "DIGEST_INVALID")
# Only the distribution spec's error codes on /v2 (issue 10): a tag outside the grammar is
# MANIFEST_INVALID, an unknown route NAME_UNKNOWN; the message tells them from other causes.
TAG_BAD = (400, "MANIFEST_INVALID", "tag must match")
# Reading a manifest under a tag outside the grammar: no such manifest can exist (the
# distribution-spec conformance suite requires 404 there); writing or deleting one is TAG_BAD.
TAG_UNREADABLE = (404, "MANIFEST_UNKNOWN")
NO_ROUTE = (404, "NAME_UNKNOWN", "no such endpoint")
H64 = "a" * 64
PATH_TRICKS = [
    # (method, raw path after /v2/, (status, code[, part of the message]))
    ("GET", "team/../team/app/tags/list", NAME_BAD),
    ("GET", "team/app/../../../../etc/passwd/tags/list", NAME_BAD),
    ("GET", "../../etc/passwd", NO_ROUTE),
    ("GET", "team/./app/tags/list", NAME_BAD),
    ("GET", "team/%2e%2e/team/app/tags/list", NAME_BAD),
    ("GET", "%2e%2e/%2e%2e/etc/passwd/tags/list", NAME_BAD),
    ("GET", "..%2f..%2fetc/tags/list", NAME_BAD),
    ("GET", "team%2fapp/tags/list", NAME_BAD),
    ("GET", "team%2Fapp/manifests/v1", NAME_BAD),
    ("GET", "team//app/tags/list", NAME_BAD),
    ("GET", "/team/app/tags/list", NAME_BAD),
    ("GET", "Team/App/tags/list", NAME_BAD),
    ("PUT", "Team/App/manifests/v1", NAME_BAD),
    ("POST", "Team/App/blobs/uploads/", NAME_BAD),
    ("GET", "a" * 300 + "/tags/list", NAME_BAD),
    ("POST", "a" * 257 + "/blobs/uploads/", NAME_BAD),
    ("GET", "team/ap%00p/tags/list", NAME_BAD),
    ("POST", "team/ap%00p/blobs/uploads/", NAME_BAD),
    ("GET", "x/" * 5000 + "tags/list", NAME_BAD),
    ("GET", "team/app/blobs/md5:abc", DIGEST_BAD),
    ("DELETE", "team/app/blobs/md5:abc", DIGEST_BAD),
    ("GET", "team/app/blobs/sha256:abc", DIGEST_BAD),
    ("GET", "team/app/blobs/sha256:" + "a" * 65, DIGEST_BAD),
    ("GET", "team/app/blobs/sha256:" + "G" * 64, DIGEST_BAD),
    ("GET", "team/app/blobs/sha256:" + "A" * 64, DIGEST_BAD),
    ("GET", "team/app/blobs/sha512:" + H64, DIGEST_BAD),
    ("GET", "team/app/blobs/sha256:" + "a" * 63 + "%00", DIGEST_BAD),
    ("GET", "team/app/blobs/..%2f..%2f", DIGEST_BAD),
    ("GET", "team/app/blobs/../../../x", NO_ROUTE),
    ("GET", "team/app/blobs/sha256:" + H64, (404, "BLOB_UNKNOWN")),
    ("DELETE", "team/app/blobs/sha256:" + H64, (404, "BLOB_UNKNOWN")),
    ("GET", "team/app/manifests/v1%00", TAG_UNREADABLE),
    ("PUT", "team/app/manifests/v1%00", TAG_BAD),
    ("DELETE", "team/app/manifests/v1%00", TAG_BAD),
    ("GET", "team/app/manifests/-bad", TAG_UNREADABLE),
    ("PUT", "team/app/manifests/.hidden", TAG_BAD),
    ("GET", "team/app/manifests/..", TAG_UNREADABLE),
    ("PUT", "team/app/manifests/..", TAG_BAD),
    ("GET", "team/app/manifests/" + "a" * 200, TAG_UNREADABLE),
    ("GET", "team/app/manifests/a%20b", TAG_UNREADABLE),
    ("GET", "team/app/manifests/a%2fb", TAG_UNREADABLE),
    ("GET", "team/app/manifests/sha256:xyz", DIGEST_BAD),
    ("PUT", "team/app/manifests/sha256:xyz", DIGEST_BAD),
    ("GET", "team/app/manifests/crc32:" + H64, DIGEST_BAD),
    ("GET", "team/app/manifests/nosuchtag", (404, "MANIFEST_UNKNOWN")),
    ("GET", "team/app/blobs/uploads/..%2f..%2fx", (404, "BLOB_UPLOAD_UNKNOWN")),
    ("PATCH", "team/app/blobs/uploads/..%2f..%2fx", (404, "BLOB_UPLOAD_UNKNOWN")),
    ("PUT", "team/app/blobs/uploads/..%2f..%2fx?digest=sha256:" + H64, (404, "BLOB_UPLOAD_UNKNOWN")),
    ("DELETE", "team/app/blobs/uploads/not-a-uuid", (404, "BLOB_UPLOAD_UNKNOWN")),
    ("GET", "team/app/blobs/uploads/../../../x", NO_ROUTE),
    ("GET", "team/app/tags/list/", NO_ROUTE),
    ("GET", "team/app/", NO_ROUTE),
    ("PUT", "team/app/tags/list", (405, "UNSUPPORTED")),
]


def raw_v2(w: World, method: str, path: str, token: str, body: bytes | None = None,
           headers: dict | None = None) -> rawhttp.Resp:
    h = {"Authorization": "Basic " + base64.b64encode(f"AWS:{token}".encode()).decode(), **(headers or {})}
    return rawhttp.request(w.url + "/v2/" + path, method, body, h, timeout=TIMEOUT)


def check_oci(r: rawhttp.Resp, status: int, code: str, what: str, message: str | None = None):
    assert r.status == status, (what, r.status, r.body[:300])
    body = json.loads(r.body)
    assert body["errors"][0]["code"] == code, (what, body)
    assert all(isinstance(e.get("message"), str) for e in body["errors"]), (what, body)
    if message is not None:
        assert message in body["errors"][0]["message"], (what, body)


def test_path_tricks_on_v2(world):
    w = world
    outside = tree(w.data.parent)
    before = data_files(w.data)
    for method, path, (status, code, *message) in PATH_TRICKS:
        body = b"{}" if method in ("PUT", "PATCH") else None
        r = raw_v2(w, method, path, w.admin_token, body)
        check_oci(r, status, code, f"{method} /v2/{path[:80]}", *message)
    # A request line of 64 KiB is refused without a 5xx (by the HTTP layer or the router).
    try:
        r = raw_v2(w, "GET", "team/app/manifests/" + "a" * 65536, w.admin_token)
        assert 400 <= r.status < 500, (r.status, r.body[:200])
    except (ConnectionError, http.client.HTTPException):
        pass  # the connection was closed on the oversized request line: refused too
    # Nothing created anywhere: not in the data dir (only SQLite's own files may change), not
    # next to it.
    after = data_files(w.data)
    assert {k: v for k, v in after.items() if v[1]} == {k: v for k, v in before.items() if v[1]}
    assert set(after) == set(before), set(after) ^ set(before)
    new_outside = {p for p in tree(w.data.parent) - outside if not p.startswith("data/")
                   and not p.endswith(".log")}
    assert not new_outside, new_outside
    assert not Path("/etc/passwd/tags").exists()
    assert w.v2("GET", "team/app/tags/list", w.admin_token).json()["tags"] == ["v1"]


# ---------------------------------------------------------------------------------------------
# SigV4 edge cases on the ECR API: signed here with botocore's SigV4Auth, then tampered with
# ---------------------------------------------------------------------------------------------

INVALID_SIG = (403, "InvalidSignatureException")
INCOMPLETE = (400, "IncompleteSignatureException")
UNRECOGNIZED = (403, "UnrecognizedClientException")


def _post(w: World, headers: dict, body: bytes) -> requests.Response:
    return requests.post(w.url + "/", data=body, headers=headers, timeout=TIMEOUT)


def _raw_post(w: World, pairs: list[tuple[str, str]], body: bytes) -> rawhttp.Resp:
    """A POST whose headers are sent exactly as listed (duplicates included)."""
    u = urlsplit(w.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", "/", skip_accept_encoding=True)
        for k, v in pairs:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        r = conn.getresponse()
        return rawhttp.Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def sigv4_cases(w: World) -> list[tuple[str, callable, tuple[int, str]]]:
    body = b'{"maxResults": 5}'
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    k, s = ADMIN_KEY, ADMIN_SECRET

    def signed(**kw):
        return sign(w.url, DESCRIBE, body, k, s, **kw)

    def edit(f):
        h = signed()
        f(h)
        return lambda: _post(w, h, body)

    def also_signed(name, value, sent):
        h = signed(headers={name: value})
        if sent is None:
            del h[name]
        else:
            h[name] = sent
        return lambda: _post(w, h, body)

    def skew(minutes):
        return lambda: _post(w, signed(when=now + datetime.timedelta(minutes=minutes)), body)

    deleted_key, deleted_secret = w.deleted_key
    return [
        ("wrong region", lambda: ecr_raw(w.url, DESCRIBE, body, k, s, region="eu-west-1"), INVALID_SIG),
        ("wrong service", lambda: ecr_raw(w.url, DESCRIBE, body, k, s, service="s3"), INVALID_SIG),
        ("service ecr-public", lambda: ecr_raw(w.url, DESCRIBE, body, k, s, service="ecr-public"), INVALID_SIG),
        ("date 16 min ahead", skew(16), INVALID_SIG),
        ("date 16 min behind", skew(-16), INVALID_SIG),
        ("date 2 days ahead", skew(2 * 24 * 60), INVALID_SIG),
        ("date a year behind", skew(-365 * 24 * 60), INVALID_SIG),
        ("x-amz-date changed after signing", edit(lambda h: h.__setitem__("X-Amz-Date", "20200101T000000Z")),
         INVALID_SIG),
        ("x-amz-date missing", edit(lambda h: h.pop("X-Amz-Date")), INCOMPLETE),
        ("x-amz-date not ISO 8601", edit(lambda h: h.__setitem__("X-Amz-Date", "yesterday")), INCOMPLETE),
        ("signed header changed", also_signed("X-Berth-Extra", "a", "b"), INVALID_SIG),
        ("signed header not sent", also_signed("X-Berth-Extra", "a", None), INVALID_SIG),
        ("SignedHeaders lists an extra header", edit(lambda h: h.__setitem__(
            "Authorization", h["Authorization"].replace("SignedHeaders=", "SignedHeaders=x-berth-none;"))),
         INVALID_SIG),
        ("X-Amz-Target changed after signing", edit(lambda h: h.__setitem__(
            "X-Amz-Target", ECR_PREFIX + "DeleteRepository")), INVALID_SIG),
        ("body changed after signing", lambda: _post(w, signed(), b'{"maxResults": 6}'), INVALID_SIG),
        ("body emptied after signing", lambda: _post(w, signed(), b""), INVALID_SIG),
        ("signature byte flipped", edit(lambda h: h.__setitem__(
            "Authorization", h["Authorization"][:-1] + ("0" if h["Authorization"][-1] != "0" else "1"))),
         INVALID_SIG),
        ("wrong secret", lambda: ecr_raw(w.url, DESCRIBE, body, k, s + "x"), INVALID_SIG),
        ("unknown access key", lambda: ecr_raw(w.url, DESCRIBE, body, "AKIAUNKNOWN000000000", s), UNRECOGNIZED),
        ("deleted access key", lambda: ecr_raw(w.url, DESCRIBE, body, deleted_key, deleted_secret), UNRECOGNIZED),
        ("bob's key with the admin's secret",
         lambda: ecr_raw(w.url, DESCRIBE, body, w.users["bob"].key, s), INVALID_SIG),
        ("Signature missing", edit(lambda h: h.__setitem__(
            "Authorization", h["Authorization"].split(", Signature=")[0])), INCOMPLETE),
        ("Authorization garbage", edit(lambda h: h.__setitem__("Authorization", "AWS4-HMAC-SHA256 garbage")),
         INCOMPLETE),
        ("SigV2-style Authorization", edit(lambda h: h.__setitem__("Authorization", f"AWS {k}:c2ln")),
         INCOMPLETE),
        ("algorithm AWS4-HMAC-SHA512", edit(lambda h: h.__setitem__(
            "Authorization", h["Authorization"].replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"))), INCOMPLETE),
        ("no Authorization", edit(lambda h: h.pop("Authorization")), (403, "MissingAuthenticationTokenException")),
        ("duplicate Authorization (valid first)", lambda: _raw_post(
            w, list(signed().items()) + [("Authorization", sign(w.url, DESCRIBE, body, "AKIAUNKNOWN000000000",
                                                                 s)["Authorization"])], body), INCOMPLETE),
        ("duplicate Authorization (valid last)", lambda: _raw_post(
            w, [("Authorization", sign(w.url, DESCRIBE, body, "AKIAUNKNOWN000000000", s)["Authorization"])]
            + list(signed().items()), body), INCOMPLETE),
        ("duplicate Authorization (same twice)", lambda: _raw_post(
            w, list(signed().items()) + [("Authorization", signed()["Authorization"])], body), INCOMPLETE),
        ("duplicate X-Amz-Date", lambda: _raw_post(
            w, list(signed().items()) + [("X-Amz-Date", "20200101T000000Z")], body), INCOMPLETE),
    ]


@pytest.fixture(scope="module")
def deleted_key(world):
    """An access key of a ReadOnly user that worked, then was deleted with `berth admin`
    (a running server sees it within 5 seconds)."""
    w = world
    key, secret = new_key(w.data, "ro", w.account)
    deadline = time.monotonic() + 15
    while ecr_raw(w.url, DESCRIBE, {}, key, secret).status_code != 200:
        assert time.monotonic() < deadline, "the new key never worked"
        time.sleep(0.25)
    admin(w.data, "delete-access-key", "--id", key)
    deadline = time.monotonic() + 15
    while ecr_raw(w.url, DESCRIBE, {}, key, secret).status_code == 200:
        assert time.monotonic() < deadline, "the deleted key still works after 15 s"
        time.sleep(0.25)
    return key, secret


def test_sigv4_edge_cases(world, deleted_key):
    w = world
    w.deleted_key = deleted_key
    # Control: the signer works, and within the 15-minute skew a request is accepted.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for minutes in (0, 14, -14):
        h = sign(w.url, DESCRIBE, b"{}", ADMIN_KEY, ADMIN_SECRET, when=now + datetime.timedelta(minutes=minutes))
        r = _post(w, h, b"{}")
        assert r.status_code == 200 and "team/app" in r.text, (minutes, r.status_code, r.text)
    for name, send, (status, code) in sigv4_cases(w):
        r = send()
        if isinstance(r, rawhttp.Resp):
            assert r.status == status, (name, r.status, r.body[:300])
            body = json.loads(r.body)
            assert body["__type"] == code and body.get("message"), (name, body)
            assert r.header("x-amzn-errortype", "").split(":")[0] == code, (name, r.headers)
            text = r.body.decode()
        else:
            assert (r.status_code, aws_error(r)) == (status, code), (name, r.status_code, r.text[:300])
            text = r.text
        assert "team/app" not in text and "repositories" not in text, (name, text)
    # The tampered DeleteRepository target deleted nothing.
    assert w.ecr().describe_repositories(repositoryNames=["team/app"])["repositories"]


# ---------------------------------------------------------------------------------------------
# malformed requests on both APIs
# ---------------------------------------------------------------------------------------------

SER = (400, "SerializationException")
INVALID = (400, "InvalidParameterException")


def _deep(n: int) -> bytes:
    return b'{"repositoryName":"team/app","x":' + b"[" * n + b"]" * n + b"}"


ECR_MALFORMED = [
    # (name, target, raw body, (status, __type)); all signed correctly by the administrator
    ("not JSON", DESCRIBE, b"{", SER),
    ("JSON array", DESCRIBE, b"[]", SER),
    ("JSON string", DESCRIBE, b'"x"', SER),
    ("JSON null", DESCRIBE, b"null", SER),
    ("JSON number", DESCRIBE, b"123", SER),
    ("trailing garbage", DESCRIBE, b"{} x", SER),
    ("invalid UTF-8 in a string", "CreateRepository", b'{"repositoryName":"te\xff\xfeam"}', SER),
    ("invalid UTF-8 outside strings", DESCRIBE, b"{\xff}", SER),
    ("lone surrogate escape", "CreateRepository", b'{"repositoryName":"\\ud800"}', SER),
    ("name is a number", "CreateRepository", b'{"repositoryName":5}', SER),
    ("name is a list", "CreateRepository", b'{"repositoryName":["a"]}', SER),
    ("name is null", "CreateRepository", b'{"repositoryName":null}', INVALID),
    ("name missing", "CreateRepository", b"{}", INVALID),
    ("name empty", "CreateRepository", b'{"repositoryName":""}', INVALID),
    ("name uppercase", "CreateRepository", b'{"repositoryName":"Team/App"}', INVALID),
    ("name 300 chars", "CreateRepository", json.dumps({"repositoryName": "a" * 300}).encode(), INVALID),
    ("name with NUL", "CreateRepository", b'{"repositoryName":"team/a\\u0000b"}', INVALID),
    ("name with ..", "CreateRepository", b'{"repositoryName":"team/../etc"}', INVALID),
    ("maxResults 0", DESCRIBE, b'{"maxResults":0}', INVALID),
    ("maxResults -1", DESCRIBE, b'{"maxResults":-1}', INVALID),
    ("maxResults 1001", DESCRIBE, b'{"maxResults":1001}', INVALID),
    ("maxResults 10**30", DESCRIBE, b'{"maxResults":1000000000000000000000000000000}', SER),
    ("maxResults 1e400", DESCRIBE, b'{"maxResults":1e400}', SER),
    ("maxResults 1.5", DESCRIBE, b'{"maxResults":1.5}', SER),
    ("maxResults string", DESCRIBE, b'{"maxResults":"10"}', SER),
    ("maxResults true", DESCRIBE, b'{"maxResults":true}', SER),
    ("registryId not 12 digits", DESCRIBE, b'{"registryId":"abc"}', INVALID),
    ("deep nesting 100000", DESCRIBE, _deep(100000), SER),
    ("deep nesting in a known field", "TagResource",
     b'{"resourceArn":"arn:aws:ecr:us-east-1:1:repository/x","tags":' + b"[" * 50000 + b"]" * 50000 + b"}", SER),
    ("repositoryNames 1000 entries", DESCRIBE,
     json.dumps({"repositoryNames": [f"r{i}" for i in range(1000)]}).encode(), INVALID),
    ("BatchGetImage 1000 imageIds", "BatchGetImage", json.dumps(
        {"repositoryName": "team/app", "imageIds": [{"imageTag": f"t{i}"} for i in range(1000)]}).encode(), INVALID),
    ("BatchDeleteImage 101 imageIds", "BatchDeleteImage", json.dumps(
        {"repositoryName": "team/app", "imageIds": [{"imageTag": f"t{i}"} for i in range(101)]}).encode(), INVALID),
    ("BatchCheckLayerAvailability 100000 digests", "BatchCheckLayerAvailability", json.dumps(
        {"repositoryName": "team/app", "layerDigests": ["sha256:" + "%064x" % i for i in range(100000)]}).encode(),
     INVALID),
    ("BatchDeleteImage imageIds empty", "BatchDeleteImage",
     b'{"repositoryName":"team/app","imageIds":[]}', INVALID),
    ("UploadLayerPart negative offset", "UploadLayerPart", None, INVALID),
    ("UploadLayerPart offset 2**63", "UploadLayerPart", None, SER),
    ("UploadLayerPart blob not base64", "UploadLayerPart", None, SER),
    ("UploadLayerPart unknown uploadId", "UploadLayerPart", None, (400, "UploadNotFoundException")),
    ("CompleteLayerUpload no digests", "CompleteLayerUpload", None, INVALID),
    ("CompleteLayerUpload bad digest", "CompleteLayerUpload", None, INVALID),
    ("PutImage manifest not JSON", "PutImage",
     b'{"repositoryName":"team/app","imageManifest":"not json","imageTag":"m1"}', INVALID),
    ("PutImage manifest {}", "PutImage", b'{"repositoryName":"team/app","imageManifest":"{}","imageTag":"m2"}',
     INVALID),
    ("PutImage wrong mediaType", "PutImage", json.dumps(
        {"repositoryName": "team/app", "imageTag": "m3", "imageManifest": json.dumps(
            {"schemaVersion": 2, "mediaType": "text/html", "config": {}, "layers": []})}).encode(), INVALID),
    ("PutImage bad tag", "PutImage", json.dumps(
        {"repositoryName": "team/app", "imageTag": "bad tag!", "imageManifest": "{}"}).encode(), INVALID),
    ("SetRepositoryPolicy not JSON", "SetRepositoryPolicy",
     b'{"repositoryName":"team/app","policyText":"{nope"}', INVALID),
    ("SetRepositoryPolicy deep nesting", "SetRepositoryPolicy", json.dumps(
        {"repositoryName": "team/app", "policyText": "[" * 5000 + "]" * 5000}).encode(), INVALID),
    ("PutLifecyclePolicy garbage", "PutLifecyclePolicy",
     b'{"repositoryName":"team/app","lifecyclePolicyText":"{\\"rules\\":7}"}', INVALID),
    ("imageTagMutability unknown", "PutImageTagMutability",
     b'{"repositoryName":"team/app","imageTagMutability":"SOMETIMES"}', INVALID),
    ("TagResource aws: key", "TagResource", json.dumps(
        {"resourceArn": "arn:aws:ecr:us-east-1:{acct}:repository/team/app",
         "tags": [{"Key": "aws:owner", "Value": "x"}]}).encode(), (400, "InvalidTagParameterException")),
    ("TagResource bad ARN", "TagResource",
     b'{"resourceArn":"arn:nope","tags":[{"Key":"a","Value":"b"}]}', INVALID),
    ("unknown operation", "NoSuchOperation", b"{}", (400, "UnknownOperationException")),
    ("operation name empty", "", b"{}", (400, "UnknownOperationException")),
]


def _ecr_body(w: World, name: str, target: str, raw: bytes | None) -> bytes:
    if raw is not None:
        return raw.replace(b"{acct}", w.account.encode())
    up = w.ecr().initiate_layer_upload(repositoryName="team/app")["uploadId"]
    blob = base64.b64encode(b"abc").decode()
    base = {"repositoryName": "team/app", "uploadId": up}
    return json.dumps({
        "UploadLayerPart negative offset": {**base, "partFirstByte": -1, "partLastByte": 2, "layerPartBlob": blob},
        "UploadLayerPart offset 2**63": {**base, "partFirstByte": 2 ** 63, "partLastByte": 2 ** 63 + 2,
                                         "layerPartBlob": blob},
        "UploadLayerPart blob not base64": {**base, "partFirstByte": 0, "partLastByte": 2, "layerPartBlob": "!!!"},
        "UploadLayerPart unknown uploadId": {**base, "uploadId": "00000000-0000-0000-0000-000000000000",
                                             "partFirstByte": 0, "partLastByte": 2, "layerPartBlob": blob},
        "CompleteLayerUpload no digests": {**base, "layerDigests": []},
        "CompleteLayerUpload bad digest": {**base, "layerDigests": ["sha256:xyz"]},
    }[name]).encode()


def _ecr_unsigned_malformed(w: World) -> list[tuple[str, requests.Response, tuple[int, str]]]:
    """Malformed at the HTTP level: content type, method, headers."""
    out = []
    body = b"{}"
    h = sign(w.url, DESCRIBE, body, ADMIN_KEY, ADMIN_SECRET)
    # (another Content-Type on a well-formed, signed request is served: not malformed)
    hh = dict(h)
    hh.pop("X-Amz-Target")
    out.append(("X-Amz-Target not sent (signed without it)", _post(w, hh, body), INVALID_SIG))
    hh = sign(w.url, DESCRIBE, body, ADMIN_KEY, ADMIN_SECRET, headers={"X-Amz-Target": "Foo.DescribeRepositories"})
    out.append(("X-Amz-Target of another service", _post(w, hh, body), (400, "UnknownOperationException")))
    # Refused from its Content-Length alone, before any of it is read: 413 (issue 9).
    out.append(("body over 16 MiB", requests.post(w.url + "/", data=b" " * (16 * 1024 * 1024 + 10), headers=h,
                                                  timeout=60), (413, "SerializationException")))
    return out


def test_malformed_requests(world):
    w = world
    problems, attempts = [], 0

    def check_aws(name, r, expected):
        nonlocal attempts
        attempts += 1
        try:
            t = aws_error(r)
        except (AssertionError, ValueError) as e:
            problems.append(f"ECR {name}: not a 4xx AWS error: {r.status_code} {r.text[:200]} ({e})")
            return
        if expected is not None and (r.status_code, t) != expected:
            problems.append(f"ECR {name}: {r.status_code} {t}, pinned {expected}: {r.text[:200]}")

    for name, target, raw, expected in ECR_MALFORMED:
        check_aws(name, ecr_raw(w.url, target, _ecr_body(w, name, target, raw), ADMIN_KEY, ADMIN_SECRET), expected)
    for name, r, expected in _ecr_unsigned_malformed(w):
        check_aws(name, r, expected)

    for name, send, expected in oci_malformed(w):
        attempts += 1
        r = send()
        if not 400 <= r.status < 500:
            problems.append(f"/v2 {name}: {r.status} {r.body[:200]!r}")
            continue
        try:
            code = json.loads(r.body)["errors"][0]["code"] if r.body else ""
        except (ValueError, KeyError, IndexError, TypeError):
            problems.append(f"/v2 {name}: not the OCI error shape: {r.status} {r.body[:200]!r}")
            continue
        if expected is not None and (r.status, code) != expected[:2]:
            problems.append(f"/v2 {name}: {r.status} {code}, pinned {expected}: {r.body[:200]!r}")
        for header, value in (expected[2] if expected is not None and len(expected) > 2 else {}).items():
            if r.header(header) != value:
                problems.append(f"/v2 {name}: {header}: {r.header(header)!r}, pinned {value!r}")
    assert not problems, f"{len(problems)} of {attempts}:\n" + "\n".join(problems)
    assert attempts >= 60, attempts
    # Range headers that do not parse are ignored (RFC 9110 14.2): the whole blob, exactly.
    for rng in ("bytes=abc", "bytes=5-2", "bytes=99999999999999999999-", "bytes=--5", "items=0-1"):
        r = raw_v2(w, "GET", f"team/app/blobs/{w.app_layer}", w.admin_token, None, {"Range": rng})
        assert r.status == 200 and sha256(r.body) == w.app_layer, (rng, r.status)
    # A mount from a name that is not valid falls back to a plain upload session (spec).
    r = raw_v2(w, "POST", f"team/app/blobs/uploads/?mount={w.app_layer}&from=..%2f..", w.admin_token)
    assert r.status == 202 and "/blobs/uploads/" in r.header("location"), (r.status, r.body)
    assert raw_v2(w, "DELETE", rawhttp.absolute(w.url, r.header("location"))[len(w.url) + 4:],
                  w.admin_token).status == 204
    # Nothing of it landed: team/app has its one image and the server still works.
    imgs = w.ecr().describe_images(repositoryName="team/app")["imageDetails"]
    assert [i["imageTags"] for i in imgs] == [["v1"]], imgs
    assert sorted(r["repositoryName"] for r in w.ecr().describe_repositories()["repositories"]) == [
        "team/app", "team/hidden-name-7f3a"]


def oci_malformed(w: World):
    tok = w.admin_token
    good_cfg, good_layer, good_manifest = image("app-v1")
    m = json.loads(good_manifest)

    def put_manifest(body: bytes, ct: str = OCI_MANIFEST, ref: str = "mal"):
        return lambda: raw_v2(w, "PUT", f"team/app/manifests/{ref}", tok, body, {"Content-Type": ct})

    def session() -> str:
        r = raw_v2(w, "POST", "team/app/blobs/uploads/", tok)
        assert r.status == 202, r.status
        return rawhttp.absolute(w.url, r.header("location"))[len(w.url) + 4:]

    def patch(content_range: str | None, body: bytes = b"abcd", first: bytes | None = None):
        def go():
            loc = session()
            if first is not None:
                r = raw_v2(w, "PATCH", loc, tok, first, {"Content-Range": f"0-{len(first) - 1}"})
                assert r.status == 202, r.status
                loc = rawhttp.absolute(w.url, r.header("location"))[len(w.url) + 4:]
            h = {"Content-Type": "application/octet-stream"}
            if content_range is not None:
                h["Content-Range"] = content_range
            return raw_v2(w, "PATCH", loc, tok, body, h)
        return go

    def close(query: str, body: bytes | None = None, headers=None):
        def go():
            loc = session()
            sep = "&" if "?" in loc else "?"
            return raw_v2(w, "PUT", loc + sep + query, tok, body, headers)
        return go

    def blob_get(rng: str):
        return lambda: raw_v2(w, "GET", f"team/app/blobs/{w.app_layer}", tok, None, {"Range": rng})

    def with_(**kw):
        return json.dumps({**m, **kw}).encode()

    MI, BU, UI = (400, "MANIFEST_INVALID"), (400, "MANIFEST_BLOB_UNKNOWN"), (400, "BLOB_UPLOAD_INVALID")
    # (status, code[, headers]): only the spec's codes (issue 10). A chunk that does not start
    # where the upload stands is 416 BLOB_UPLOAD_INVALID with the Range the upload holds; a
    # Content-Range that does not parse or fit the body, 416 BLOB_UPLOAD_INVALID; a blob Range
    # past the end, 416 SIZE_INVALID with `Content-Range: bytes */<size>` (RFC 9110 15.5.17).
    CR = (416, "BLOB_UPLOAD_INVALID")

    def ooo(holds: int):
        return (416, "BLOB_UPLOAD_INVALID", {"Range": f"0-{max(holds - 1, 0)}"})
    return [
        ("manifest not JSON", put_manifest(b"not json"), MI),
        ("manifest empty", put_manifest(b""), MI),
        ("manifest JSON array", put_manifest(b"[]"), MI),
        ("manifest invalid UTF-8", put_manifest(b'{"schemaVersion":2,"mediaType":"\xff"}'), MI),
        ("manifest deep nesting", put_manifest(b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}"), MI),
        ("manifest schemaVersion 1", put_manifest(with_(schemaVersion=1)), MI),
        ("manifest schemaVersion string", put_manifest(with_(schemaVersion="2")), MI),
        ("manifest mediaType differs from Content-Type",
         put_manifest(with_(mediaType="application/vnd.oci.image.index.v1+json")), MI),
        ("manifest unknown mediaType", put_manifest(with_(mediaType="text/html"), "text/html"), MI),
        ("manifest config missing", put_manifest(json.dumps({k: v for k, v in m.items() if k != "config"}).encode()),
         MI),
        ("manifest config digest invalid", put_manifest(with_(config={**m["config"], "digest": "sha256:xyz"})), MI),
        ("manifest negative size", put_manifest(with_(config={**m["config"], "size": -1})), MI),
        ("manifest size 2**64", put_manifest(with_(config={**m["config"], "size": 2 ** 64})), MI),
        ("manifest 10000 unknown layers", put_manifest(with_(layers=[
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:%064x" % i, "size": 1}
            for i in range(10000)])), BU),
        ("manifest over 4 MiB", put_manifest(with_(annotations={"x": "y" * (4 * 1024 * 1024)})),
         (413, "SIZE_INVALID")),
        ("manifest by digest that is not its digest", put_manifest(good_manifest, ref="sha256:" + "b" * 64),
         (400, "DIGEST_INVALID")),
        ("PATCH Content-Range garbage", patch("abc"), CR),
        ("PATCH Content-Range reversed", patch("5-2"), CR),
        ("PATCH Content-Range negative", patch("-1-2"), CR),
        ("PATCH Content-Range overflowing", patch("0-99999999999999999999999"), CR),
        ("PATCH Content-Range out of order", patch("10-13"), ooo(0)),
        ("PATCH Content-Range longer than body", patch("0-99"), CR),
        ("PATCH second chunk overlapping", patch("2-5", first=b"abcd"), ooo(4)),
        ("PUT close digest garbage", close("digest=garbage"), (400, "DIGEST_INVALID")),
        ("PUT close digest md5", close("digest=md5:" + "a" * 32), (400, "DIGEST_INVALID")),
        ("PUT close wrong digest", close("digest=sha256:" + "c" * 64, b"abcd"), (400, "DIGEST_INVALID")),
        ("PUT close no digest", close("x=1", b"abcd"), (400, "DIGEST_INVALID")),
        ("PUT close two digests", close(f"digest={w.app_layer}&digest=sha256:{'c' * 64}", b"abcd"), None),
        ("POST digest md5", lambda: raw_v2(w, "POST", "team/app/blobs/uploads/?digest=md5:abc", tok, b"x"),
         (400, "DIGEST_INVALID")),
        ("POST mount garbage", lambda: raw_v2(w, "POST", "team/app/blobs/uploads/?mount=garbage&from=team/app",
                                              tok), None),
        ("Range past the end", blob_get("bytes=1000000-"),
         (416, "SIZE_INVALID", {"Content-Range": "bytes */1500"})),
        ("tags n=-1", lambda: raw_v2(w, "GET", "team/app/tags/list?n=-1", tok), None),
        ("tags n=abc", lambda: raw_v2(w, "GET", "team/app/tags/list?n=abc", tok), None),
        ("tags n overflowing", lambda: raw_v2(w, "GET", "team/app/tags/list?n=99999999999999999999", tok), None),
        ("catalog n=-5", lambda: raw_v2(w, "GET", "_catalog?n=-5", tok), None),
        ("referrers of a bad digest", lambda: raw_v2(w, "GET", "team/app/referrers/sha256:xyz", tok),
         (400, "DIGEST_INVALID")),
    ]


def test_ecr_endpoint_get_answers_in_aws_shape(world):
    w = world
    h = sign(w.url, DESCRIBE, b"{}", ADMIN_KEY, ADMIN_SECRET)
    r = requests.get(w.url + "/", headers=h, timeout=TIMEOUT)
    assert r.status_code == 405, r.status_code  # refused, never served
    aws_error(r)


# ---------------------------------------------------------------------------------------------
# kill -9 under load: six concurrent pushers, every acknowledged object intact after restart
# ---------------------------------------------------------------------------------------------

KILL_ROUNDS = int(os.environ.get("BERTH_HELD_KILL_ROUNDS", "5"))
PUSHERS = 6


def _pusher(base: str, wid: int, rnd: int, stop: threading.Event, acked: list, lock: threading.Lock):
    """Push random images (config + 1-2 layers by POST?digest= or POST/PATCH/PUT, then the
    manifest under a unique tag) until stopped or the server dies. Records each 201."""
    rng = random.Random(f"held-kill-{rnd}-{wid}-{time.time_ns()}")
    repo = f"held/kill{wid % 3}"
    for i in range(400):
        if stop.is_set():
            return
        try:
            layers = [rng.randbytes(rng.randint(1, 256 * 1024)) for _ in range(rng.randint(1, 2))]
            cfg = json.dumps({"architecture": "amd64", "os": "linux", "seed": f"{rnd}-{wid}-{i}",
                              "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]}}).encode()
            for blob in [*layers, cfg]:
                d = sha256(blob)
                if rng.random() < 0.5:
                    r = rawhttp.request(f"{base}/v2/{repo}/blobs/uploads/?digest={d}", "POST", blob,
                                        {"Content-Type": "application/octet-stream"}, timeout=10)
                else:
                    r = rawhttp.request(f"{base}/v2/{repo}/blobs/uploads/", "POST", None, timeout=10)
                    if r.status != 202:
                        return
                    loc = rawhttp.absolute(base, r.header("location"))
                    half = len(blob) // 2
                    if half:
                        r = rawhttp.request(loc, "PATCH", blob[:half], {"Content-Range": f"0-{half - 1}"},
                                            timeout=10)
                        if r.status != 202:
                            return
                        loc = rawhttp.absolute(base, r.header("location"))
                    sep = "&" if "?" in loc else "?"
                    r = rawhttp.request(f"{loc}{sep}digest={d}", "PUT", blob[half:],
                                        {"Content-Type": "application/octet-stream"}, timeout=10)
                if r.status != 201:
                    return
                with lock:
                    acked.append(("blob", repo, d, blob))
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(cfg),
                           "size": len(cfg)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(x),
                            "size": len(x)} for x in layers]}).encode()
            tag = f"r{rnd}-w{wid}-{i}"
            r = rawhttp.request(f"{base}/v2/{repo}/manifests/{tag}", "PUT", manifest,
                                {"Content-Type": OCI_MANIFEST}, timeout=10)
            if r.status != 201:
                return
            with lock:
                acked.append(("manifest", repo, tag, manifest))
        except (OSError, http.client.HTTPException):
            return  # the server is gone


def test_kill9_under_six_pushers(tmp_path):
    """Six threads push random images through /v2; the server gets SIGKILL at a random moment;
    restarted on the same data dir, every blob and manifest that got its 201 is served with
    exactly its bytes, and every blob file on disk hashes to its name. Repeated, cumulatively."""
    data = tmp_path / "data"
    env = {**os.environ, "BERTH_CREATE_ON_PUSH": "true"}
    acked: list = []
    lock = threading.Lock()
    proc = spawn_berth(data, env=env)
    try:
        for rnd in range(KILL_ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=_pusher, args=(proc.url, wid, rnd, stop, acked, lock), daemon=True)
                       for wid in range(PUSHERS)]
            n_before = len(acked)
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.6, 1.8))
            proc.kill9()
            stop.set()
            for t in threads:
                t.join(30)
            assert not any(t.is_alive() for t in threads), "pushers still running 30 s after the kill"
            assert len(acked) > n_before, f"round {rnd}: nothing acknowledged before the kill"
            proc = spawn_berth(data, env=env)
            problems = []
            for kind, repo, ref, body in acked:
                path = f"{repo}/blobs/{ref}" if kind == "blob" else f"{repo}/manifests/{ref}"
                r = rawhttp.request(f"{proc.url}/v2/{path}", "GET", None,
                                    {"Accept": OCI_MANIFEST}, timeout=15)
                if r.status != 200 or r.body != body:
                    problems.append(f"{kind} {path}: {r.status}, {len(r.body)} B (sent {len(body)} B)")
                elif kind == "blob" and sha256(r.body) != ref:
                    problems.append(f"blob {path} hashes to {sha256(r.body)}")
            # Every blob file on disk (blobs/<alg>/<2 hex>/<hex>; on a cluster, every such S3
            # object) holds bytes that hash to its name.
            files = 0
            at_rest = store.of(data)
            for key in at_rest.keys("blobs/"):
                files += 1
                alg, hexd = key.split("/")[1], key.rsplit("/", 1)[1]
                assert alg in ("sha256", "sha512"), key
                if hashlib.new(alg, at_rest.read(key)).hexdigest() != hexd:
                    problems.append(f"blob file {key} does not hash to its name")
            assert files >= len({a[2] for a in acked if a[0] == "blob"}), files
            assert not problems, f"round {rnd}: {len(problems)} problems:\n" + "\n".join(problems[:30]) + \
                f"\n--- log ---\n{proc.log_tail()}"
            print(f"round {rnd}: {len(acked) - n_before} acknowledged this round, {len(acked)} checked, "
                  f"{files} blob files hashed")
        # and it still takes a push
        cfg, layer, manifest = image("after-kills")
        for blob in (cfg, layer):
            r = rawhttp.request(f"{proc.url}/v2/held/after/blobs/uploads/?digest={sha256(blob)}", "POST", blob,
                                timeout=15)
            assert r.status == 201, r.status
        r = rawhttp.request(f"{proc.url}/v2/held/after/manifests/v1", "PUT", manifest,
                            {"Content-Type": OCI_MANIFEST}, timeout=15)
        assert r.status == 201, (r.status, r.body)
    finally:
        proc.stop()
