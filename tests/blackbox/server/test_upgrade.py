"""Upgrade (issue 10): a data directory written by the previous release (5b4a125) opens and
serves unchanged under the current binary, now that every account has a registry of its own.

The fixture, tests/fixtures/upgrade-5b4a125.tar.gz, was made by
tests/blackbox/tools/make_upgrade_fixture.py with the previous binary; its fixture.json records
what that server answered. Here it is unpacked into a temporary directory and the current
binary ($BERTH_BIN, as everywhere) is started on it with the configuration the old one ran with
(berth.toml from the tarball), plus `server.registry_domain`, the one new key, so that account B's
registry has a host to be reached at. Everything is checked through real clients: boto3 on the
ECR API and plain HTTP (requests) on /v2, with registry tokens from GetAuthorizationToken.

In the previous release all accounts shared one repository namespace; now `registryId` selects
the account's registry, so A's repositories are listed in A's registry only and B's `b/tools`
in B's. Run against the previous binary (BERTH_BIN=/path/to/old, and
UPGRADE_TEST_NO_REGISTRY_DOMAIN=1 since it refuses the new key), the checks of that new
behaviour fail and the others pass.

Berth-only (it starts its own server); skipped for other targets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from conftest import DEFAULT_BERTH_BIN, spawn_berth

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent.parent / "fixtures" / "upgrade-5b4a125.tar.gz"
TOP = "upgrade-5b4a125"
# Account registries are addressed as <account-id>.<registry_domain>:<port>. The test sends its
# requests to 127.0.0.1:<port> with that Host header, so no name needs to resolve.
REGISTRY_DOMAIN = "berth.test"
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])


# The fixture is a data dir of the previous release: its metadata is a SQLite file, its blobs
# files. A cluster would start on an empty PostgreSQL database and bucket instead.
pytestmark = pytest.mark.embedded_only("the previous release's data dir is SQLite and files")


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("the upgrade test starts berth itself on the previous release's data")


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Upgraded:
    """The current binary serving the unpacked fixture."""

    def __init__(self, proc, root: Path, record: dict, config: Path, env: dict):
        self.proc = proc
        self.url = proc.url
        self.root = root
        self.data = root / "data"
        self.record = record
        self.config = config
        self.env = env
        self.A = record["accounts"]["A"]["id"]
        self.B = record["accounts"]["B"]["id"]
        self.port = urlsplit(self.url).port
        # Repositories the tests themselves create, per owner ("A"/"B"), beside the recorded ones.
        self.created: dict[str, set[str]] = {"A": set(), "B": set()}

    def user(self, who: str) -> dict:
        return self.record["users"][who]

    def ecr(self, who: str, secret: str | None = None):
        u = self.user(who)
        return boto3.client("ecr", endpoint_url=self.url, region_name=self.record["region"],
                            aws_access_key_id=u["access_key_id"],
                            aws_secret_access_key=secret or u["secret_access_key"],
                            config=BotoConfig(retries={"total_max_attempts": 1}))

    def login(self, who: str, registry_id: str | None = None) -> tuple[dict, str]:
        """(Authorization header, proxyEndpoint) from GetAuthorizationToken."""
        kw = {"registryIds": [registry_id]} if registry_id else {}
        data = self.ecr(who).get_authorization_token(**kw)["authorizationData"][0]
        user, _ = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        assert user == "AWS"
        return {"Authorization": "Basic " + data["authorizationToken"]}, data["proxyEndpoint"]

    def host_of(self, account: str | None) -> str:
        """The Host a /v2 request names: an account's registry host, or (None) the bare address."""
        if account is None:
            return f"127.0.0.1:{self.port}"
        return f"{account}.{REGISTRY_DOMAIN}:{self.port}"

    def v2(self, method: str, host: str, path: str, headers: dict, **kw) -> requests.Response:
        """A /v2 request to this server's socket, naming `host`. `path` may be an absolute URL
        (an upload Location); only its path and query are used."""
        parts = urlsplit(path)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return requests.request(method, self.url + target, headers={**headers, "Host": host},
                                timeout=30, allow_redirects=False, **kw)

    def repos_of(self, owner: str) -> dict:
        return {n: r for n, r in self.record["repositories"].items() if r["owner"] == owner}


@pytest.fixture(scope="module")
def up(tmp_path_factory) -> Upgraded:
    assert FIXTURE.exists(), f"{FIXTURE} is missing (make it with tests/blackbox/tools/make_upgrade_fixture.py)"
    work = tmp_path_factory.mktemp("upgrade")
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(work, filter="data")
    root = work / TOP
    record = json.loads((root / "fixture.json").read_text())
    config = root / "berth.toml"
    if os.environ.get("UPGRADE_TEST_NO_REGISTRY_DOMAIN") != "1":
        # The old file's keys are flat (read now as deprecated aliases); registry_domain is new
        # and exists only under [server], so it goes in a table after them.
        config.write_text(config.read_text().rstrip("\n") + f'\n\n[server]\nregistry_domain = "{REGISTRY_DOMAIN}"\n')
    # The server's environment: nothing of this process's BERTH_* (conftest sets
    # BERTH_CREATE_ON_PUSH for other suites) and no admin keys, so the administrator is the one
    # the previous release wrote to <data>/credentials.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_"))}
    env["RUST_BACKTRACE"] = "0"
    proc = spawn_berth(root / "data", ["--config", str(config)], env=env, anonymous=False,
                       log_path=work / "berth.log")
    yield Upgraded(proc, root, record, config, env)
    alive = proc.alive()
    code = proc.stop()
    if not alive:
        pytest.fail(f"berth died during the upgrade tests:\n{proc.log_tail()}")
    assert code == 0, proc.log_tail()


# ---------------------------------------------------------------------------------------------
# identity: accounts, users, keys, policies
# ---------------------------------------------------------------------------------------------


def test_default_account_and_administrator_kept(up):
    """The default account is still A, and the administrator's key written by the previous
    release to <data>/credentials still signs."""
    reg = up.ecr("berth-admin").describe_registry()
    assert reg["registryId"] == up.A


@pytest.mark.parametrize("who", ["berth-admin", "alice", "reader", "bob"])
def test_old_access_keys_still_sign(up, who):
    u = up.user(who)
    client = up.ecr(who)
    token = client.get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(token["authorizationToken"]).startswith(b"AWS:")
    # A call whose answer depends on who signed: the caller's own registry.
    repos = client.describe_repositories()["repositories"]
    assert repos and {r["registryId"] for r in repos} == {u["account"]}, repos
    # And the signature is checked: the same key id with another secret is refused.
    with pytest.raises(ClientError) as e:
        up.ecr(who, secret="x" * 40).describe_repositories()
    assert e.value.response["Error"]["Code"] in ("InvalidSignatureException", "UnrecognizedClientException")


def test_accounts_users_and_policies_via_admin(up):
    """`berth admin` of the current release reads the previous release's identity store."""
    binary = os.environ.get("BERTH_BIN") or str(DEFAULT_BERTH_BIN)

    def admin(*args: str):
        r = subprocess.run([binary, "admin", "--data", str(up.data), "--config", str(up.config), *args],
                           capture_output=True, text=True, timeout=60, env=up.env)
        assert r.returncode == 0, f"berth admin {' '.join(args)}: {r.stderr}"
        return json.loads(r.stdout)

    accounts = {a["AccountId"]: a["Name"] for a in admin("list-accounts")["Accounts"]}
    for acct in up.record["accounts"].values():
        assert accounts.get(acct["id"]) == acct["name"], accounts
    for name, u in up.record["users"].items():
        if "list_policies" not in u:
            continue  # the administrator: not made with `berth admin`
        got = admin("list-policies", "--user", name, "--account", u["account"])
        assert sorted(got["Policies"], key=lambda p: p["PolicyName"]) == \
            sorted(u["list_policies"]["Policies"], key=lambda p: p["PolicyName"]), name
        keys = json.dumps(admin("list-access-keys", "--user", name, "--account", u["account"]))
        assert u["access_key_id"] in keys, (name, keys)


def test_identity_policies_still_decide(up):
    """reader (ReadOnly) may read but not push; bob's inline Deny still holds."""
    with pytest.raises(ClientError) as e:
        up.ecr("reader").create_repository(repositoryName="team/not-allowed")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        up.ecr("bob").delete_repository(registryId=up.B, repositoryName="b/tools", force=True)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny" in e.value.response["Error"]["Message"]


# ---------------------------------------------------------------------------------------------
# repositories, each in its owner's registry
# ---------------------------------------------------------------------------------------------


def _describe_all(client, registry_id: str) -> list[dict]:
    out, kw = [], {"registryId": registry_id, "maxResults": 100}
    while True:
        page = client.describe_repositories(**kw)
        out += page["repositories"]
        if not page.get("nextToken"):
            return out
        kw["nextToken"] = page["nextToken"]


@pytest.mark.parametrize("owner,who", [("A", "berth-admin"), ("B", "bob")])
def test_repositories_listed_in_owner_registry(up, owner, who):
    acct = up.record["accounts"][owner]["id"]
    client = up.ecr(who)
    expected = up.repos_of(owner)
    listed = {r["repositoryName"]: r for r in _describe_all(client, acct)
              if r["repositoryName"] not in up.created[owner]}
    assert set(listed) == set(expected), f"registry {acct} lists {sorted(listed)}"
    # With no registryId, the caller's own registry.
    own = {r["repositoryName"] for r in client.describe_repositories()["repositories"]}
    assert own - up.created[owner] == set(expected)
    for name, rec in expected.items():
        r = listed[name]
        assert r["registryId"] == acct, r
        assert r["repositoryArn"] == rec["arn"] == f"arn:aws:ecr:{up.record['region']}:{acct}:repository/{name}"
        assert r["repositoryUri"].endswith("/" + name), r
        assert r["imageTagMutability"] == rec["tag_mutability"], r
        assert r["imageScanningConfiguration"]["scanOnPush"] == rec["scan_on_push"], r
        assert r["encryptionConfiguration"]["encryptionType"] == rec["encryption_type"], r


def test_repository_uri_names_owner_registry_host(up):
    """Each account's repositoryUri names its registry's host once registry_domain is set."""
    if os.environ.get("UPGRADE_TEST_NO_REGISTRY_DOMAIN") == "1":
        pytest.skip("registry_domain not configured")
    r = up.ecr("bob").describe_repositories(registryId=up.B, repositoryNames=["b/tools"])["repositories"][0]
    assert r["repositoryUri"] == f"{up.host_of(up.B)}/b/tools"


def test_b_repository_not_in_a_registry(up):
    """`b/tools` belongs to B's registry only: A's registry does not have it."""
    with pytest.raises(ClientError) as e:
        up.ecr("berth-admin").describe_repositories(registryId=up.A, repositoryNames=["b/tools"])
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"


def test_b_may_now_own_a_team_app_of_its_own(up):
    """What the migration is for: B creates `team/app` in its own registry. A's `team/app` keeps
    its images, and each registry answers for its own."""
    bob = up.ecr("bob")
    up.created["B"].add("team/app")
    r = bob.create_repository(registryId=up.B, repositoryName="team/app")["repository"]
    assert r["registryId"] == up.B and r["repositoryArn"].endswith(f":{up.B}:repository/team/app")
    assert bob.describe_images(registryId=up.B, repositoryName="team/app")["imageDetails"] == []
    a_images = up.ecr("berth-admin").describe_images(registryId=up.A, repositoryName="team/app")["imageDetails"]
    assert {d["imageDigest"] for d in a_images} == \
        {i["digest"] for i in up.record["repositories"]["team/app"]["images"]}
    # B still reads A's through A's repository policy, by naming A's registry.
    got = bob.batch_get_image(registryId=up.A, repositoryName="team/app", imageIds=[{"imageTag": "v1"}])
    assert got["failures"] == [] and got["images"][0]["registryId"] == up.A


# ---------------------------------------------------------------------------------------------
# images: tags, digests, manifests, bytes
# ---------------------------------------------------------------------------------------------


def _owner_client(up, rec):
    return up.ecr("bob" if rec["owner"] == "B" else "berth-admin")


@pytest.mark.parametrize("name", ["team/app", "team/base", "team/empty", "b/tools"])
def test_images_tags_and_digests(up, name):
    rec = up.record["repositories"][name]
    client = _owner_client(up, rec)
    acct = rec["registry_id"]
    details = client.describe_images(registryId=acct, repositoryName=name)["imageDetails"]
    got = {d["imageDigest"]: d for d in details}
    assert set(got) == {i["digest"] for i in rec["images"]}
    for img in rec["images"]:
        d = got[img["digest"]]
        assert d["registryId"] == acct and d["repositoryName"] == name, d
        assert sorted(d.get("imageTags", [])) == img["tags"], d
        assert d["imageSizeInBytes"] == img["size_in_bytes"], d
        assert abs(d["imagePushedAt"].timestamp() - img["pushed_at"]) < 0.002, d
        assert d["imageManifestMediaType"] == img["media_type"], d
        ids = [{"imageDigest": img["digest"]}] + [{"imageTag": t} for t in img["tags"]]
        res = client.batch_get_image(registryId=acct, repositoryName=name, imageIds=ids)
        assert res["failures"] == [], res["failures"]
        assert len(res["images"]) == len(ids)
        for got_img in res["images"]:
            assert got_img["registryId"] == acct
            assert got_img["imageId"]["imageDigest"] == img["digest"]
            assert got_img["imageManifest"] == img["manifest"]
            assert got_img["imageManifestMediaType"] == img["media_type"]


def _pull_over_v2(up, headers: dict, host: str, name: str, rec: dict) -> None:
    """Every image of `rec` by each tag and by digest, and every blob, byte-identical."""
    for img in rec["images"]:
        for ref in img["tags"] + [img["digest"]]:
            r = up.v2("GET", host, f"/v2/{name}/manifests/{ref}", {**headers, "Accept": MANIFEST_ACCEPT})
            assert r.status_code == 200, (host, name, ref, r.status_code, r.text)
            assert r.content == img["manifest"].encode()
            assert r.headers["Docker-Content-Digest"] == img["digest"]
            assert r.headers["Content-Type"] == img["media_type"]
        for digest in img["blobs"]:
            r = up.v2("GET", host, f"/v2/{name}/blobs/{digest}", headers)
            assert r.status_code == 200, (host, name, digest, r.status_code, r.text)
            blob = up.record["blobs"][digest]
            assert len(r.content) == blob["size"] and sha256_hex(r.content) == blob["sha256"], (name, digest)


@pytest.mark.parametrize("name", ["team/app", "team/base"])
def test_a_images_pull_over_v2_bare_address(up, name):
    """The bare address keeps serving the default account (A) exactly as before."""
    headers, _ = up.login("alice")
    _pull_over_v2(up, headers, up.host_of(None), name, up.record["repositories"][name])


def test_a_images_pull_over_v2_own_host(up):
    """A's registry host serves A too (its proxyEndpoint may name it or the bare address)."""
    headers, endpoint = up.login("alice")
    assert urlsplit(endpoint).netloc in (up.host_of(up.A), up.host_of(None)), endpoint
    _pull_over_v2(up, headers, up.host_of(up.A), "team/app", up.record["repositories"]["team/app"])


def test_b_image_pulls_over_v2_as_b(up):
    """B's image, from B's registry host, with B's token: proxyEndpoint names that host."""
    headers, endpoint = up.login("bob")
    assert urlsplit(endpoint).netloc == up.host_of(up.B), endpoint
    _pull_over_v2(up, headers, urlsplit(endpoint).netloc, "b/tools", up.record["repositories"]["b/tools"])


# ---------------------------------------------------------------------------------------------
# cross-account access by A's repository policy
# ---------------------------------------------------------------------------------------------


def test_repository_policy_still_lets_b_pull_a_image(up):
    rec = up.record["repositories"]["team/app"]
    bob = up.ecr("bob")
    ids = [{"imageTag": t} for img in rec["images"] for t in img["tags"]]
    res = bob.batch_get_image(registryId=up.A, repositoryName="team/app", imageIds=ids)
    assert res["failures"] == [], res["failures"]
    by_digest = {i["digest"]: i for i in rec["images"]}
    assert len(res["images"]) == len(ids)
    for got in res["images"]:
        assert got["registryId"] == up.A
        assert got["imageManifest"] == by_digest[got["imageId"]["imageDigest"]]["manifest"]
    # Over /v2 too, at the owner's host, with B's token.
    headers, _ = up.login("bob")
    _pull_over_v2(up, headers, up.host_of(up.A), "team/app", rec)


def test_no_policy_no_cross_account_pull(up):
    """team/base has no repository policy: B may not read it."""
    with pytest.raises(ClientError) as e:
        up.ecr("bob").batch_get_image(registryId=up.A, repositoryName="team/base", imageIds=[{"imageTag": "1.0"}])
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


# ---------------------------------------------------------------------------------------------
# settings read back unchanged
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["team/app", "team/base", "team/empty", "b/tools"])
def test_repository_settings_unchanged(up, name):
    rec = up.record["repositories"][name]
    client = _owner_client(up, rec)
    acct = rec["registry_id"]
    assert sorted(client.list_tags_for_resource(resourceArn=rec["arn"])["tags"], key=lambda t: t["Key"]) == \
        sorted(rec["tags"], key=lambda t: t["Key"])
    if rec["repository_policy"] is None:
        with pytest.raises(ClientError) as e:
            client.get_repository_policy(registryId=acct, repositoryName=name)
        assert e.value.response["Error"]["Code"] == "RepositoryPolicyNotFoundException"
    else:
        got = client.get_repository_policy(registryId=acct, repositoryName=name)
        assert got["registryId"] == acct and got["policyText"] == rec["repository_policy"]
    if rec["lifecycle_policy"] is None:
        with pytest.raises(ClientError) as e:
            client.get_lifecycle_policy(registryId=acct, repositoryName=name)
        assert e.value.response["Error"]["Code"] == "LifecyclePolicyNotFoundException"
    else:
        got = client.get_lifecycle_policy(registryId=acct, repositoryName=name)
        assert got["registryId"] == acct and got["lifecyclePolicyText"] == rec["lifecycle_policy"]


def test_immutable_tags_still_immutable(up):
    """team/base is IMMUTABLE: putting another manifest under its tag is refused."""
    rec = up.record["repositories"]["team/base"]
    manifest = json.loads(rec["images"][0]["manifest"])
    manifest["annotations"] = {"org.berth.fixture": "other"}
    with pytest.raises(ClientError) as e:
        up.ecr("berth-admin").put_image(registryId=up.A, repositoryName="team/base", imageTag="1.0",
                                        imageManifest=json.dumps(manifest),
                                        imageManifestMediaType=rec["images"][0]["media_type"])
    assert e.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"


def test_registry_policy_unchanged(up):
    got = up.ecr("berth-admin").get_registry_policy()
    assert got["registryId"] == up.A
    assert got["policyText"] == up.record["registry_policies"]["A"]


# ---------------------------------------------------------------------------------------------
# the upload left open
# ---------------------------------------------------------------------------------------------


def test_open_upload_resumes_and_completes(up):
    """The session alice left after a 1,000-byte PATCH: its status reads back, the rest is
    appended and the upload completed; the blob then pulls back byte-identical."""
    u = up.record["open_upload"]
    blob = base64.b64decode(u["blob_base64"])
    headers, _ = up.login(u["user"])
    host = up.host_of(None)
    r = up.v2("GET", host, u["location"], headers)
    assert r.status_code == 204, (r.status_code, r.text)
    assert r.headers["Range"] == u["range"] == f"0-{u['offset'] - 1}"
    assert r.headers.get("Docker-Upload-UUID") == u["id"]
    loc = r.headers.get("Location") or u["location"]
    rest = blob[u["offset"]:]
    r = up.v2("PATCH", host, loc, {**headers, "Content-Type": "application/octet-stream",
                                   "Content-Range": f"{u['offset']}-{len(blob) - 1}"}, data=rest)
    assert r.status_code == 202, (r.status_code, r.text)
    assert r.headers["Range"] == f"0-{len(blob) - 1}"
    loc = r.headers["Location"]
    sep = "&" if "?" in loc else "?"
    r = up.v2("PUT", host, f"{loc}{sep}digest={u['digest']}", headers)
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers["Docker-Content-Digest"] == u["digest"]
    r = up.v2("GET", host, f"/v2/{u['repository']}/blobs/{u['digest']}", headers)
    assert r.status_code == 200 and r.content == blob
