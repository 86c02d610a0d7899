"""Shared helpers of the hostile-client tests that held (test_held.py): a Berth started with
credentials, accounts, users and keys made with `berth admin`, boto3 clients, registry tokens,
raw /v2 requests, SigV4-signed raw ECR requests, and a snapshot of the data directory.

Every account owns its registry (issue 10). With `server.registry_domain` set (`server_env(domain)`),
a /v2 request reaches account X's registry on X's host, `<X>.<domain>:<port>`: here the request
goes to 127.0.0.1 with that Host header (`World.v2(..., host=w.registry_host(X))`), no name
resolution needed. The bare address is the caller's own registry.

Loopback only; every request carries a timeout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tools import store
from tools.berth import backend_env, berth_binary, secured_env
from tools.registry_api import assert_loopback

ADMIN_KEY, ADMIN_SECRET = "AKIABERTHHELD0000001", "berth-held-admin-secret"
ACCOUNT_B = "210987654321"
REGION = "us-east-1"
TIMEOUT = 15
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ECR_CT = "application/x-amz-json-1.1"
ECR_PREFIX = "AmazonEC2ContainerRegistry_V20150921."


@dataclass
class User:
    name: str
    account: str
    key: str
    secret: str


@dataclass
class World:
    url: str
    data: Path
    account: str          # the default account (A): the administrator's
    proc: object = None
    users: dict[str, User] = field(default_factory=dict)
    domain: str | None = None  # server.registry_domain, if the server was started with one

    def registry_host(self, account: str | None = None) -> str:
        """`<account>.<domain>:<port>`, the host of `account`'s registry (A's by default)."""
        assert self.domain, "the server was started without a registry_domain"
        return f"{account or self.account}.{self.domain}:{urlsplit(self.url).port}"

    def via_loopback(self, url: str) -> tuple[str, dict[str, str]]:
        """A URL naming a registry host of the domain, as the same URL on 127.0.0.1 plus the Host
        header that addresses that registry there; any other URL as it is, with no header."""
        u = urlsplit(url)
        if self.domain and (u.hostname or "").endswith("." + self.domain):
            return urlunsplit(u._replace(netloc=f"127.0.0.1:{u.port}")), {"Host": u.netloc}
        return url, {}

    def creds(self, who: str = "admin") -> tuple[str, str]:
        if who == "admin":
            return ADMIN_KEY, ADMIN_SECRET
        return self.users[who].key, self.users[who].secret

    def ecr(self, who: str = "admin"):
        key, secret = self.creds(who)
        return boto3.client("ecr", endpoint_url=self.url, region_name=REGION, aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=Config(retries={"total_max_attempts": 1}, connect_timeout=TIMEOUT,
                                          read_timeout=TIMEOUT))

    def token(self, who: str = "admin") -> str:
        data = self.ecr(who).get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        assert user == "AWS"
        return password

    def v2(self, method: str, path: str, token: str | None = None, *, user: str = "AWS",
           headers: dict | None = None, host: str | None = None, **kw) -> requests.Response:
        """A /v2 request (`path` after /v2/, or a whole URL); `host` (a Host header) addresses
        that registry instead of the caller's own."""
        url, hosted = self.via_loopback(path) if path.startswith("http") else (f"{self.url}/v2/{path}", {})
        assert_loopback(url)
        auth = (user, token) if token is not None else None
        headers = {**hosted, **(headers or {}), **({"Host": host} if host else {})}
        return requests.request(method, url, auth=auth, headers=headers, timeout=TIMEOUT,
                                allow_redirects=False, **kw)

    def signed(self, target: str, body, who: str = "admin", **kw) -> requests.Response:
        key, secret = self.creds(who)
        return ecr_raw(self.url, target, body, key, secret, **kw)


def server_env(domain: str | None = None) -> dict[str, str]:
    return secured_env(ADMIN_KEY, ADMIN_SECRET, domain)


def admin(data: Path, *args: str) -> str:
    r = subprocess.run([berth_binary(), "admin", "--data", str(data), *args], capture_output=True,
                       text=True, timeout=60, env=backend_env(data, server_env()))
    assert r.returncode == 0, f"berth admin {' '.join(args)}: {r.stderr}"
    return r.stdout


def default_account(data: Path) -> str:
    accounts = json.loads(admin(data, "list-accounts"))["Accounts"]
    return next(a["AccountId"] for a in accounts if a["Name"] == "default")


def new_user(data: Path, name: str, account: str, policies=()) -> User:
    acct = ["--account", account]
    admin(data, "create-user", "--user", name, *acct)
    for p in policies:
        admin(data, "attach-policy", "--user", name, *acct, "--name", p)
    return User(name, account, *new_key(data, name, account))


def new_key(data: Path, name: str, account: str) -> tuple[str, str]:
    creds = admin(data, "create-access-key", "--user", name, "--account", account, "--profile", name)
    key = re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1)
    secret = re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1)
    return key, secret


# ---------------------------------------------------------------------------------------------
# ECR requests signed here (so that they can be tampered with after signing)
# ---------------------------------------------------------------------------------------------


def sign(url: str, target: str, body: bytes, key: str, secret: str, *, region: str = REGION,
         service: str = "ecr", headers: dict | None = None, when=None) -> dict[str, str]:
    """The headers of a SigV4-signed AWS JSON 1.1 request (botocore's signer). ``when`` (a
    datetime) signs as of that time instead of now."""
    hdrs = {"Content-Type": ECR_CT, "X-Amz-Target": ECR_PREFIX + target, **(headers or {})}
    req = AWSRequest(method="POST", url=url + "/", data=body, headers=hdrs)
    signer = SigV4Auth(Credentials(key, secret), service, region)
    if when is not None:
        from unittest import mock  # noqa: PLC0415
        with mock.patch("botocore.auth.get_current_datetime", lambda: when):
            signer.add_auth(req)
    else:
        signer.add_auth(req)
    return dict(req.headers.items())


def ecr_raw(url: str, target: str, body, key: str, secret: str, **kw) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = sign(url, target, raw, key, secret, **kw)
    assert_loopback(url)
    return requests.post(url + "/", data=raw, headers=headers, timeout=TIMEOUT)


def aws_error(r: requests.Response) -> str:
    """The `__type` of an AWS JSON error (asserting AWS's error shape)."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body, dict) and "__type" in body, r.text[:300]
    assert "message" in body or "Message" in body, body
    assert r.headers.get("x-amzn-RequestId"), dict(r.headers)
    t = body["__type"].rsplit("#", 1)[-1]
    assert r.headers.get("x-amzn-ErrorType", "").split(":")[0] == t, (dict(r.headers), body)
    return t


def oci_error(r: requests.Response) -> str:
    """The code of an OCI error (asserting the spec's error shape; HEAD has no body)."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if r.request.method == "HEAD":
        return ""
    body = r.json()
    errs = body["errors"]
    assert isinstance(errs, list) and errs, body
    assert all(isinstance(e.get("code"), str) and "message" in e for e in errs), body
    return errs[0]["code"]


# ---------------------------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image(seed: str) -> tuple[bytes, bytes, bytes]:
    """(config, layer, manifest) of a small OCI image; every byte determined by ``seed``."""
    import random  # noqa: PLC0415
    layer = random.Random(f"held:{seed}").randbytes(1500)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"seed": seed}},
                      "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}]}).encode()
    return cfg, layer, manifest


def push(world: World, repo: str, tag: str, seed: str, token: str) -> tuple[str, str]:
    """Push an image through /v2; returns (manifest digest, layer digest)."""
    cfg, layer, manifest = image(seed)
    for blob in (cfg, layer):
        r = world.v2("POST", f"{repo}/blobs/uploads/?digest={sha256(blob)}", token, data=blob)
        assert r.status_code == 201, (r.status_code, r.text)
    r = world.v2("PUT", f"{repo}/manifests/{tag}", token, data=manifest,
                 headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, (r.status_code, r.text)
    return sha256(manifest), sha256(layer)


def data_files(data: Path) -> dict[str, tuple[int, str]]:
    """Every regular file under the data dir: relative path -> (size, sha256 of the bytes).
    SQLite's files change on every write, so they are listed by name only. On a cluster the
    blobs and uploads are objects of its S3 bucket: they are listed too, under the same names
    (``blobs/...``, ``uploads/...``)."""
    out = {}
    for p in sorted(data.rglob("*")):
        if p.is_file():
            rel = str(p.relative_to(data))
            if "sqlite" in rel or rel.endswith(("-wal", "-shm", ".db")):
                out[rel] = (0, "")
            else:
                out[rel] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    s = store.of(data)
    if isinstance(s, store.S3Store):
        for key in s.keys():
            body = s.read(key)
            out[key] = (len(body), hashlib.sha256(body).hexdigest())
    return out


def tree(root: Path) -> set[str]:
    """Every path (files and dirs) under ``root``, relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}
