"""Request-rate limits as ECR applies its API quotas: a client that calls an operation faster
than its account's rate is refused with ThrottlingException on the ECR API and 429
TOOMANYREQUESTS with Retry-After on /v2, where each route counts as the ECR operation it maps to.
Real clients: boto3 with retries off sees the refusal, the aws CLI with its default retries gets
through.

Berth-only (it starts berth with credentials and a `[throttle]` table of its own)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import spawn_berth
from ecr.oci import push_image

KEY, SECRET = "AKIABERTHTHROTTLE001", "berth-throttle-secret"

# Low limits so a test reaches them in a few calls; CreateRepository, GetAuthorizationToken,
# InitiateLayerUpload and PutImage are not limited.
THROTTLE_TOML = """
[throttle]
ListImages = { rate = 2, burst = 3 }
BatchGetImage = { rate = 2, burst = 3 }
BatchCheckLayerAvailability = { rate = 1, burst = 2 }
DescribeRepositories = { rate = 5, burst = 1 }
"""


pytestmark = pytest.mark.embedded_only(
    "rates are per node (README, Request rates): three nodes admit three times the configured rate")


@pytest.fixture(scope="module")
def berth(tmp_path_factory):
    base = tmp_path_factory.mktemp("throttle")
    cfg = base / "berth.toml"
    cfg.write_text(THROTTLE_TOML)
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET,
               BERTH_CREATE_ON_PUSH="false")
    p = spawn_berth(base / "data", ["--config", str(cfg)], env=env, anonymous=False)
    yield p
    p.stop()


def ecr(berth):
    return boto3.client("ecr", endpoint_url=berth.url, region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET,
                        # No retry at all: in botocore's default (legacy) mode `max_attempts: 1`
                        # still allows one retry, which would hide the refusal.
                        config=Config(retries={"total_max_attempts": 1}))


def basic(berth) -> dict:
    token = ecr(berth).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return {"Authorization": "Basic " + token}


def throttled(call) -> ClientError:
    with pytest.raises(ClientError) as e:
        call()
    return e.value


def test_boto3_without_retries_sees_throttling_exception(berth):
    c = ecr(berth)
    c.create_repository(repositoryName="throttle/boto")
    for _ in range(3):  # the burst
        assert c.list_images(repositoryName="throttle/boto")["imageIds"] == []
    e = throttled(lambda: c.list_images(repositoryName="throttle/boto"))
    err, meta = e.response["Error"], e.response["ResponseMetadata"]
    assert err["Code"] == "ThrottlingException"
    assert err["Message"].startswith("Rate exceeded for ListImages"), err
    assert meta["HTTPStatusCode"] == 400
    assert meta["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    # The rate is 2/s: half a second later a token is back.
    time.sleep(0.6)
    assert c.list_images(repositoryName="throttle/boto")["imageIds"] == []
    # Operations without a limit, and other limited ones, are not affected.
    c.create_repository(repositoryName="throttle/other")
    assert c.batch_get_image(repositoryName="throttle/boto", imageIds=[{"imageTag": "none"}])["images"] == []
    # Calling on and on is refused again within a few calls (the burst is 3).
    outcomes = []
    for _ in range(8):
        try:
            c.list_images(repositoryName="throttle/boto")
            outcomes.append("ok")
        except ClientError as e:
            outcomes.append(e.response["Error"]["Code"])
            break
    assert outcomes[-1] == "ThrottlingException" and len(outcomes) <= 4, outcomes


def test_v2_answers_429_with_retry_after_and_shares_the_account_bucket(berth):
    c = ecr(berth)
    c.create_repository(repositoryName="throttle/oci")
    auth = basic(berth)
    push_image(berth.url, "throttle/oci", ["v1"], "throttle", headers=auth)
    time.sleep(1.6)  # the previous test's BatchGetImage token is back: a full burst of 3
    url = f"{berth.url}/v2/throttle/oci/manifests/v1"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json", **auth}
    for _ in range(3):
        r = requests.get(url, headers=accept, timeout=10)
        assert r.status_code == 200, r.text
    r = requests.get(url, headers=accept, timeout=10)
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    errors = r.json()["errors"]
    assert errors[0]["code"] == "TOOMANYREQUESTS" and "BatchGetImage" in errors[0]["message"], errors
    # The ECR operation a manifest GET maps to is limited by the same bucket, and vice versa.
    e = throttled(lambda: c.batch_get_image(repositoryName="throttle/oci", imageIds=[{"imageTag": "v1"}]))
    assert e.response["Error"]["Code"] == "ThrottlingException"
    # Blob HEADs count as BatchCheckLayerAvailability (burst 2), and a HEAD answer has no body.
    blob = r"sha256:" + "0" * 64
    codes = [requests.head(f"{berth.url}/v2/throttle/oci/blobs/{blob}", headers=auth, timeout=10).status_code
             for _ in range(3)]
    assert codes == [404, 404, 429], codes
    # Waiting as told is enough.
    time.sleep(int(r.headers["Retry-After"]))
    assert requests.get(url, headers=accept, timeout=10).status_code == 200
    # Without credentials the request is refused as before, not counted against the account.
    assert requests.get(url, headers={"Accept": accept["Accept"]}, timeout=10).status_code == 401


def test_aws_cli_with_default_retries_gets_through(berth, tmp_path):
    c = ecr(berth)
    names = [f"throttle/cli-{i}" for i in range(6)]
    for n in names:
        c.create_repository(repositoryName=n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "none"))
    # One page per repository: the CLI sends DescribeRepositories back to back, faster than
    # 5/s with a burst of 1, and retries each refusal with backoff.
    time.sleep(0.3)
    r = subprocess.run(["aws", "ecr", "describe-repositories", "--page-size", "1", "--endpoint-url", berth.url,
                        "--output", "json", "--debug"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    listed = {repo["repositoryName"] for repo in json.loads(r.stdout)["repositories"]}
    assert set(names) <= listed, listed
    assert "ThrottlingException" in r.stderr, "the CLI was never throttled; the test proves nothing"
