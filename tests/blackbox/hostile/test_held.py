"""Attacks on Berth that HELD, each pinned as a test so that none can regress.

Berth was attacked from outside (forged registry tokens, tampered download URLs and SigV4
signatures, path tricks, malformed requests, kill -9 under load) and as an insider of another
account or with a read-only policy. For each attack the test asserts the precise answer the
server gives now: the status and the error code in the protocol's shape (OCI
`{"errors":[{"code":...}]}` on /v2, AWS JSON `__type` + `x-amzn-ErrorType` on the ECR API), that
no data leaks, that nothing changed (checked with an administrator's read afterwards), and that
the server is still alive.

Berth-only: the server is started here without --anonymous, with accounts, users and access
keys made with `berth admin` before it starts.
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
from tools import rawhttp

DESCRIBE = "DescribeRepositories"
TOKEN_CONTEXT = b"berth registry token v1\n"   # crates/auth/src/token.rs


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
    proc = spawn_berth(data, env=server_env(), anonymous=False)
    w = World(proc.url, data, account, proc, users)
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


def ecr_denied(call, action: str, **kw) -> None:
    with pytest.raises(ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    assert err["Code"] == "AccessDeniedException", (action, err)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.value.response
    assert f"not authorized to perform: {action} " in err["Message"], err


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
        "bob's token claimed by padding": ("AWS", tok + "=="),
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
    w = world
    tok = w.token("bob")
    hdr = {"Accept": OCI_MANIFEST}
    cfg, layer, manifest = image("bob-into-a")
    checks = [
        (w.v2("GET", "team/app/tags/list", tok), "ecr:ListImages"),
        (w.v2("GET", "team/app/manifests/v1", tok, headers=hdr), "ecr:BatchGetImage"),
        (w.v2("GET", f"team/app/manifests/{w.app_manifest}", tok, headers=hdr), "ecr:BatchGetImage"),
        (w.v2("GET", f"team/app/blobs/{w.app_layer}", tok), "ecr:GetDownloadUrlForLayer"),
        (w.v2("POST", "team/app/blobs/uploads/", tok), "ecr:InitiateLayerUpload"),
        (w.v2("POST", f"team/app/blobs/uploads/?digest={sha256(layer)}", tok, data=layer),
         "ecr:InitiateLayerUpload"),
        (w.v2("POST", f"team/app/blobs/uploads/?mount={w.bee_layer}&from=bee/own", tok),
         "ecr:CompleteLayerUpload"),
        (w.v2("PUT", "team/app/manifests/v1", tok, data=manifest,
              headers={"Content-Type": OCI_MANIFEST}), "ecr:PutImage"),
        (w.v2("DELETE", "team/app/manifests/v1", tok), "ecr:BatchDeleteImage"),
        (w.v2("DELETE", f"team/app/manifests/{w.app_manifest}", tok), "ecr:BatchDeleteImage"),
    ]
    for r, action in checks:
        assert_denied(r, action)
        assert w.app_manifest.split(":")[1] not in r.text
    for method in ("HEAD",):
        r = w.v2(method, "team/app/manifests/v1", tok, headers=hdr)
        assert r.status_code == 403 and "Docker-Content-Digest" not in r.headers, dict(r.headers)
        r = w.v2(method, f"team/app/blobs/{w.app_layer}", tok)
        assert r.status_code == 403 and "Content-Length" in r.headers and r.headers.get(
            "Docker-Content-Digest") is None
    # The catalog shows bob only his own repository.
    r = w.v2("GET", "_catalog", tok)
    assert r.status_code == 200 and r.json()["repositories"] == ["bee/own"], r.text
    assert "team/" not in r.text
    # And A's image is untouched.
    r = w.v2("GET", "team/app/manifests/v1", w.admin_token, headers=hdr)
    assert r.status_code == 200 and sha256(r.content) == w.app_manifest
    assert w.v2("GET", "team/app/tags/list", w.admin_token).json()["tags"] == ["v1"]


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
    # The same without registryId (one namespace of names per server): still A's, still denied.
    ecr_denied(b.list_images, "ecr:ListImages", repositoryName="team/app")
    ecr_denied(b.batch_get_image, "ecr:BatchGetImage", repositoryName="team/app",
               imageIds=[{"imageTag": "v1"}])
    # Listing reveals nothing of A: bob's own registry, and A's named explicitly.
    names = [r["repositoryName"] for r in b.describe_repositories()["repositories"]]
    assert names == ["bee/own"], names
    try:
        out = b.describe_repositories(registryId=w.account)["repositories"]
        assert out == [], out
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
    with pytest.raises(ClientError) as e:
        b.describe_repositories(repositoryNames=["team/hidden-name-7f3a"])
    assert e.value.response["Error"]["Code"] in ("RepositoryNotFoundException", "AccessDeniedException")
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
