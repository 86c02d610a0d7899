"""Hostile clients against access control (issue 9): each attack found, replayed with real
clients (boto3, the aws CLI, plain HTTP with registry tokens as docker sends them).

1. A resource policy naming an account (its root ARN or bare id) delegates to that account; it
   does not grant that account's users anything their identity policies do not.
2. A registry token or signed download URL of a deleted user stops working.
3. Pages of `_catalog` and DescribeRepositories never name a repository the caller may not see.

Berth-only: it starts berth without --anonymous, with users made by `berth admin`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from urllib.parse import unquote

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import spawn_berth
from ecr.oci import wait_for
from ecr.test_access import (
    OCI_MANIFEST,
    World,
    admin,
    new_user,
    push_image,
    repo_policy,
    server_env,
    v2,
)

ACCOUNT_B = "210987654321"
TOKEN_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]}
# Sees (describes and pulls) only repositories pg/*-open.
OPEN_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    {"Effect": "Allow", "Action": ["ecr:DescribeRepositories", "ecr:BatchGetImage"],
     "Resource": "arn:aws:ecr:*:*:repository/pg/*-open"}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Account A with `nobody` (no identity policy), `tokenonly` (only
    ecr:GetAuthorizationToken) and `peeker` (sees pg/*-open only); account B with `bnobody` (no
    identity policy) and `bro` (ReadOnly)."""
    data = tmp_path_factory.mktemp("hostile-access") / "data"
    accounts = json.loads(admin(data, "list-accounts"))["Accounts"]
    account = next(a["AccountId"] for a in accounts if a["Name"] == "default")
    admin(data, "create-account", "--name", "team-b", "--id", ACCOUNT_B)
    users = {
        "nobody": new_user(data, "nobody", account),
        "tokenonly": new_user(data, "tokenonly", account, documents={"token-only": TOKEN_ONLY}),
        "peeker": new_user(data, "peeker", account, documents={"open-only": OPEN_ONLY}),
        "bnobody": new_user(data, "bnobody", ACCOUNT_B),
        "bro": new_user(data, "bro", ACCOUNT_B, ["AmazonEC2ContainerRegistryReadOnly"]),
    }
    proc = spawn_berth(data, env=server_env(), anonymous=False)
    yield World(proc.url, data, account, users)
    proc.stop()


def outcome(call, **kw) -> str:
    """"allowed", or the error code the call failed with."""
    try:
        call(**kw)
        return "allowed"
    except ClientError as e:
        return e.response["Error"]["Code"]


# ---------------------------------------------------------------------------------------------
# 1. an account principal in a resource policy is a delegation, not a grant
# ---------------------------------------------------------------------------------------------


def attempts_on_repository(world: World, who: str, repo: str, owner: str) -> dict[str, str]:
    """Every repository action a hostile user tries, by name, with its outcome."""
    c = world.ecr(who)
    digest, manifest, layer = push_image(world, repo, "v1", f"{repo}-{who}")
    arn = world.arn(repo, owner)
    reg = {"registryId": owner, "repositoryName": repo}
    calls = {
        "BatchGetImage": (c.batch_get_image, dict(reg, imageIds=[{"imageTag": "v1"}])),
        "GetDownloadUrlForLayer": (c.get_download_url_for_layer, dict(reg, layerDigest=layer)),
        "BatchCheckLayerAvailability": (c.batch_check_layer_availability, dict(reg, layerDigests=[layer])),
        "ListImages": (c.list_images, reg),
        "DescribeImages": (c.describe_images, reg),
        "DescribeRepositories": (c.describe_repositories, {"registryId": owner, "repositoryNames": [repo]}),
        "PutImage": (c.put_image, dict(reg, imageManifest=manifest, imageTag="hostile")),
        "InitiateLayerUpload": (c.initiate_layer_upload, reg),
        "PutImageTagMutability": (c.put_image_tag_mutability, dict(reg, imageTagMutability="IMMUTABLE")),
        "TagResource": (c.tag_resource, {"resourceArn": arn, "tags": [{"Key": "owned", "Value": "yes"}]}),
        "ListTagsForResource": (c.list_tags_for_resource, {"resourceArn": arn}),
        "GetRepositoryPolicy": (c.get_repository_policy, reg),
        "SetRepositoryPolicy": (c.set_repository_policy, dict(reg, policyText=repo_policy(
            {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}))),
        "BatchDeleteImage": (c.batch_delete_image, dict(reg, imageIds=[{"imageDigest": digest}])),
        "DeleteRepositoryPolicy": (c.delete_repository_policy, reg),
        "DeleteRepository": (c.delete_repository, dict(reg, force=True)),
    }
    return {name: outcome(call, **kw) for name, (call, kw) in calls.items()}


@pytest.mark.parametrize("form", ["root-arn", "account-id"])
def test_account_principal_grants_nothing_to_a_user_without_identity_policy(world, form):
    account = world.account
    principal = f"arn:aws:iam::{account}:root" if form == "root-arn" else account
    repo = f"hostile/acct-{form}"
    world.ecr().create_repository(repositoryName=repo)
    world.ecr().set_repository_policy(repositoryName=repo, policyText=repo_policy(
        {"Sid": "WholeAccount", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "ecr:*"}))

    got = attempts_on_repository(world, "nobody", repo, account)
    allowed = sorted(a for a, o in got.items() if o != "AccessDeniedException")
    assert not allowed, f"account-principal policy ({form}): {len(got)} actions tried by a user with no " \
                        f"identity policy, {len(allowed)} not denied: {[(a, got[a]) for a in allowed]}"
    # The repository and its policy are intact.
    assert world.ecr().describe_repositories(repositoryNames=[repo])["repositories"]
    assert principal in world.ecr().get_repository_policy(repositoryName=repo)["policyText"]

    # /v2 with a token of a user whose identity allows only GetAuthorizationToken: no pull, no
    # push, no delete.
    token = world.token("tokenonly")
    digest, manifest, _ = push_image(world, repo, "v2", f"{repo}-v2")
    tries = {
        "GET manifest": v2(world, "GET", f"{repo}/manifests/v2", token),
        "POST upload": v2(world, "POST", f"{repo}/blobs/uploads/", token),
        "PUT manifest": v2(world, "PUT", f"{repo}/manifests/hostile", token, data=manifest,
                           headers={"Content-Type": OCI_MANIFEST}),
        "DELETE manifest": v2(world, "DELETE", f"{repo}/manifests/{digest}", token),
    }
    not_denied = {k: r.status_code for k, r in tries.items() if r.status_code != 403}
    assert not not_denied, f"/v2: {len(tries)} requests, not refused: {not_denied}"
    assert all(r.json()["errors"][0]["code"] == "DENIED" for r in tries.values())

    # The same policy naming the user itself does grant (same account, specific principal).
    world.ecr().set_repository_policy(repositoryName=repo, policyText=repo_policy(
        {"Sid": "OneUser", "Effect": "Allow", "Principal": {"AWS": world.users["tokenonly"].arn},
         "Action": ["ecr:BatchGetImage"]}))
    assert v2(world, "GET", f"{repo}/manifests/v2", token).status_code == 200
    assert v2(world, "POST", f"{repo}/blobs/uploads/", token).status_code == 403


def test_account_principal_in_the_registry_policy_grants_nothing_either(world):
    owner = world.ecr()
    repo = "hostile/registry-policy"
    owner.create_repository(repositoryName=repo)
    owner.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "WholeAccount", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{world.account}:root"},
         "Action": "ecr:*"}]}))
    try:
        nobody = world.ecr("nobody")
        got = {
            "GetAuthorizationToken": outcome(nobody.get_authorization_token),
            "DescribeRegistry": outcome(nobody.describe_registry),
            "GetRegistryPolicy": outcome(nobody.get_registry_policy),
            "PutRegistryPolicy": outcome(nobody.put_registry_policy, policyText=repo_policy(
                {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"})),
            "DeleteRegistryPolicy": outcome(nobody.delete_registry_policy),
            "CreateRepository": outcome(nobody.create_repository, repositoryName="hostile/by-nobody"),
        }
        got.update(attempts_on_repository(world, "nobody", repo, world.account))
        allowed = sorted(a for a, o in got.items() if o != "AccessDeniedException")
        assert not allowed, f"account-principal registry policy: {len(got)} actions tried by a user with no " \
                            f"identity policy, {len(allowed)} not denied: {[(a, got[a]) for a in allowed]}"
        assert "WholeAccount" in owner.get_registry_policy()["policyText"]
    finally:
        try:
            owner.delete_registry_policy()
        except ClientError as e:  # a hostile user deleted it already (the bug)
            assert e.response["Error"]["Code"] == "RegistryPolicyNotFoundException"


def test_cross_account_needs_both_sides(world):
    """Another account: the resource policy (naming the account or the user) and the caller's
    identity policy must both allow."""
    repo = "hostile/cross"
    world.ecr().create_repository(repositoryName=repo)
    _, manifest, _ = push_image(world, repo, "v1", "cross")
    results = {}
    for principal in [f"arn:aws:iam::{ACCOUNT_B}:root", ACCOUNT_B, world.users["bnobody"].arn,
                      world.users["bro"].arn]:
        world.ecr().set_repository_policy(repositoryName=repo, policyText=repo_policy(
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "ecr:*"}))
        for who in ["bnobody", "bro"]:
            c = world.ecr(who)
            results[(principal, who, "pull")] = outcome(
                c.batch_get_image, registryId=world.account, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
            results[(principal, who, "delete")] = outcome(
                c.delete_repository, registryId=world.account, repositoryName=repo, force=True)
    # Only `bro` (ReadOnly identity) pulls, and only where the policy names B or bro; nobody
    # deletes (ReadOnly does not allow it).
    want = {k: "allowed" if k[1] == "bro" and k[2] == "pull" and k[0] != world.users["bnobody"].arn
            else "AccessDeniedException" for k in results}
    assert results == want
    assert world.ecr().describe_repositories(repositoryNames=[repo])["repositories"]


# ---------------------------------------------------------------------------------------------
# 2. a deleted user's token and signed URLs stop working
# ---------------------------------------------------------------------------------------------


def test_deleted_users_token_and_signed_url_are_refused(world):
    repo = "hostile/doomed"
    world.ecr().create_repository(repositoryName=repo)
    _, _, layer = push_image(world, repo, "v1", "doomed")
    user = new_user(world.data, "doomed", world.account, documents={"token-only": TOKEN_ONLY})
    world.users["doomed"] = user
    # The repository policy names the user itself (which grants on its own in its account).
    world.ecr().set_repository_policy(repositoryName=repo, policyText=repo_policy(
        {"Sid": "Doomed", "Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "ecr:*"}))
    token = wait_for(lambda: _token_or_none(world, "doomed"), 15)
    assert token, "the new user got no token"
    url = world.ecr("doomed").get_download_url_for_layer(repositoryName=repo, layerDigest=layer)["downloadUrl"]

    def push(tag: str) -> int:
        blob = f"pushed by a deleted user {tag} {time.monotonic()}".encode()
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        return requests.post(f"{world.url}/v2/{repo}/blobs/uploads/?digest={d}", data=blob, auth=("AWS", token),
                             timeout=10).status_code

    assert push("before") == 201
    assert requests.get(url, timeout=10).status_code == 200

    admin(world.data, "delete-user", "--user", "doomed")
    deleted = time.monotonic()
    # Identity caches live 5 s: within them (plus slack) the token must be refused.
    attempts = 0

    def refused() -> bool:
        nonlocal attempts
        attempts += 1
        return push(f"after-{attempts}") == 401
    assert wait_for(refused, 15, every=0.5), f"the deleted user's token still pushes: {attempts} attempts in 15 s"
    waited = time.monotonic() - deleted
    assert waited < 8, f"the deleted user's token was refused only after {waited:.1f} s"

    r = v2(world, "GET", f"{repo}/manifests/v1", token)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic "), (r.status_code, r.text)
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = requests.get(url, timeout=10)
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def _token_or_none(world, who):
    try:
        return world.token(who)
    except ClientError:
        return None


# ---------------------------------------------------------------------------------------------
# 3. paging does not leak hidden names
# ---------------------------------------------------------------------------------------------

HIDDEN_MARK = "zsecretz"


@pytest.fixture(scope="module")
def paged_repos(world):
    """Visible pg/*-open repositories with hidden ones (never visible to `peeker`) before, between
    and after them in name order."""
    names = ["pg/a-" + HIDDEN_MARK, "pg/b-open", *[f"pg/c{i:02}-{HIDDEN_MARK}" for i in range(12)], "pg/d-open",
             "pg/e-open", "pg/f1-" + HIDDEN_MARK, "pg/f2-" + HIDDEN_MARK, "pg/g-open", "pg/h-" + HIDDEN_MARK]
    for n in names:
        world.ecr().create_repository(repositoryName=n)
    return sorted(names)


def readable_forms(marker: str) -> str:
    """The marker and what a caller could decode from it (URL, base64 and hex decodings)."""
    forms = [marker, unquote(marker)]
    for text in list(forms):
        for decode in (base64.urlsafe_b64decode, base64.b64decode, bytes.fromhex):
            for pad in ("", "=", "=="):
                try:
                    forms.append(decode(text + pad if decode is not bytes.fromhex else text)
                                 .decode("latin-1"))
                except (binascii.Error, ValueError):
                    pass
    return "\n".join(forms)


def test_catalog_pages_do_not_name_hidden_repositories(world, paged_repos):
    token = world.token("peeker")
    visible = [n for n in paged_repos if n.endswith("-open")]
    for n in (1, 2, 3):
        seen, links, url = [], [], f"{world.url}/v2/_catalog?n={n}"
        for _ in range(100):  # bounded: far more pages than rows
            r = requests.get(url, auth=("AWS", token), timeout=10)
            assert r.status_code == 200, r.text
            page = r.json()["repositories"]
            assert len(page) <= n
            seen += page
            link = r.headers.get("Link")
            if not link:
                break
            links.append(link)
            url = world.url + link.split(";")[0].strip("<> ")
        else:
            pytest.fail(f"_catalog?n={n} did not end within 100 pages")
        leaked = [link for link in links if HIDDEN_MARK in readable_forms(link)]
        assert not leaked, f"_catalog?n={n}: {len(links)} Link headers, {len(leaked)} name a hidden repository: " \
                           f"{leaked}"
        assert [s for s in seen if s.startswith("pg/")] == visible, (n, seen)
    # The administrator still pages through everything.
    r = requests.get(f"{world.url}/v2/_catalog?n=1000", auth=("AWS", world.token()), timeout=10)
    assert set(paged_repos) <= set(r.json()["repositories"])
    # A client-made `last` (a plain name, as the docker registry API allows) still works.
    r = requests.get(f"{world.url}/v2/_catalog?n=2&last=pg/b-open", auth=("AWS", token), timeout=10)
    assert r.json()["repositories"] == ["pg/d-open", "pg/e-open"]


def test_describe_repositories_tokens_do_not_name_hidden_repositories(world, paged_repos):
    peeker = world.ecr("peeker")
    visible = [n for n in paged_repos if n.endswith("-open")]
    for size in (1, 2, 3):
        seen, tokens, kw = [], [], {"maxResults": size}
        for _ in range(100):
            out = peeker.describe_repositories(**kw)
            assert len(out["repositories"]) <= size
            seen += [r["repositoryName"] for r in out["repositories"]]
            if not out.get("nextToken"):
                break
            tokens.append(out["nextToken"])
            kw = {"maxResults": size, "nextToken": out["nextToken"]}
        else:
            pytest.fail(f"DescribeRepositories maxResults={size} did not end within 100 pages")
        leaked = [t for t in tokens if HIDDEN_MARK in readable_forms(t)]
        assert not leaked, f"maxResults={size}: {len(tokens)} nextTokens, {len(leaked)} name a hidden repository: " \
                           f"{leaked}"
        assert [s for s in seen if s.startswith("pg/")] == visible, (size, seen)
    # A nextToken made by the caller is refused, not read as a name to continue after.
    with pytest.raises(ClientError) as e:
        peeker.describe_repositories(maxResults=1, nextToken="pg/b-open")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    # The aws CLI pages through the same (its own paginator, page size 1).
    rc, out, err = world.aws("peeker", "describe-repositories", "--page-size", "1")
    assert rc == 0, err
    assert [r["repositoryName"] for r in out["repositories"] if r["repositoryName"].startswith("pg/")] == visible
