"""`aws ecr get-login-password | docker login`, then push and pull with the token on a server
that allows no anonymous access; podman login; tokens checked on /v2.

Berth-only (it starts berth without --anonymous).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time

import boto3
import pytest
import requests

from conftest import spawn_berth
from tools.dockerd import DockerDaemon, DockerUnavailable
from tools.images import layer_tar

KEY, SECRET = "AKIABERTHLOGIN000001", "berth-login-secret"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """Berth with authentication on both APIs and no anonymous access."""
    data = tmp_path_factory.mktemp("login") / "data"
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET,
               BERTH_CREATE_ON_PUSH="false")
    proc = spawn_berth(data, env=env, anonymous=False)
    yield proc.url
    proc.stop()


def aws_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    return env


def login_password(url: str) -> str:
    r = subprocess.run(["aws", "ecr", "get-login-password", "--endpoint-url", url], capture_output=True, text=True,
                       timeout=60, env=aws_env())
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_token_shape_and_v2_checks(secured):
    ecr = boto3.client("ecr", endpoint_url=secured, region_name="us-east-1", aws_access_key_id=KEY,
                       aws_secret_access_key=SECRET)
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS"
    assert data["proxyEndpoint"] == secured
    hours = (data["expiresAt"].timestamp() - time.time()) / 3600
    assert 11.9 < hours <= 12.0
    # No credentials: the challenge docker expects.
    r = requests.get(secured + "/v2/", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert requests.get(secured + "/v2/", auth=("AWS", password), timeout=10).status_code == 200
    for user_, pw in [("AWS", password[:-2] + "xx"), ("AWS", "nonsense"), ("admin", password)]:
        r = requests.get(secured + "/v2/_catalog", auth=(user_, pw), timeout=10)
        assert r.status_code == 401, (user_, r.status_code)
    assert login_password(secured).count(".") == 1
    # As in ECR, a push to a repository that does not exist is refused.
    r = requests.post(f"{secured}/v2/never/created/blobs/uploads/", auth=("AWS", password), timeout=10)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_docker_login_push_pull(secured, tmp_path):
    try:
        d = DockerDaemon()  # its own short /tmp base: socket paths must stay under 108 bytes
        d.start()
    except DockerUnavailable as e:
        pytest.skip(f"cannot start a private dockerd: {e}")
    try:
        host = secured.removeprefix("http://")
        boto3.client("ecr", endpoint_url=secured, region_name="us-east-1", aws_access_key_id=KEY,
                     aws_secret_access_key=SECRET).create_repository(repositoryName="login/app")
        r = subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", host],
                           input=login_password(secured), capture_output=True, text=True, timeout=60, env=d.env)
        assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
        (tmp_path / "rootfs.tar").write_bytes(layer_tar([("hello.txt", b"hello from berth\n")]))
        ref = f"{host}/login/app:v1"
        d.docker("import", str(tmp_path / "rootfs.tar"), ref)
        pushed = d.docker("push", ref).stdout
        assert "digest: sha256:" in pushed
        d.docker("rmi", ref)
        d.docker("pull", ref)
        # The bad password is refused by docker login too.
        r = subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", host],
                           input="not-a-token", capture_output=True, text=True, timeout=60, env=d.env)
        assert r.returncode != 0
    finally:
        d.stop()


def test_podman_login(secured, tmp_path):
    host = secured.removeprefix("http://")
    auth = tmp_path / "auth.json"
    r = subprocess.run(["podman", "login", "--tls-verify=false", "--authfile", str(auth), "--username", "AWS",
                        "--password-stdin", host], input=login_password(secured), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert auth.exists()


def test_seed_workflow_end_to_end(secured, tmp_path):
    """create-repository, docker login, docker push, list-images, describe-images,
    batch-get-image, docker pull, batch-delete-image, delete-repository --force."""
    try:
        d = DockerDaemon()  # its own short /tmp base: socket paths must stay under 108 bytes
        d.start()
    except DockerUnavailable as e:
        pytest.skip(f"cannot start a private dockerd: {e}")

    def aws(*args):
        r = subprocess.run(["aws", "ecr", *args, "--endpoint-url", secured, "--output", "json"], capture_output=True,
                           text=True, timeout=60, env=aws_env())
        assert r.returncode == 0, r.stderr
        return __import__("json").loads(r.stdout) if r.stdout.strip() else None

    try:
        host = secured.removeprefix("http://")
        uri = aws("create-repository", "--repository-name", "seed/app")["repository"]["repositoryUri"]
        assert uri == f"{host}/seed/app"
        r = subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", host],
                           input=login_password(secured), capture_output=True, text=True, timeout=60, env=d.env)
        assert r.returncode == 0, r.stderr
        (tmp_path / "rootfs.tar").write_bytes(layer_tar([("seed.txt", b"seed workflow\n")]))
        d.docker("import", str(tmp_path / "rootfs.tar"), f"{uri}:v1")
        out = d.docker("push", f"{uri}:v1").stdout
        digest = re.search(r"digest: (sha256:[0-9a-f]{64})", out).group(1)

        ids = aws("list-images", "--repository-name", "seed/app")["imageIds"]
        assert ids == [{"imageDigest": digest, "imageTag": "v1"}]
        details = aws("describe-images", "--repository-name", "seed/app")["imageDetails"]
        assert len(details) == 1 and details[0]["imageDigest"] == digest and details[0]["imageTags"] == ["v1"]
        assert details[0]["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert details[0]["imageSizeInBytes"] > 0
        got = aws("batch-get-image", "--repository-name", "seed/app", "--image-ids", "imageTag=v1")
        assert got["failures"] == [] and got["images"][0]["imageId"]["imageDigest"] == digest
        assert __import__("json").loads(got["images"][0]["imageManifest"])["schemaVersion"] == 2

        d.docker("rmi", f"{uri}:v1")
        d.docker("pull", f"{uri}:v1")

        deleted = aws("batch-delete-image", "--repository-name", "seed/app", "--image-ids", "imageTag=v1")
        assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}] and deleted["failures"] == []
        assert aws("list-images", "--repository-name", "seed/app")["imageIds"] == [], "last tag gone: image gone"
        d.docker("rmi", f"{uri}:v1")
        assert d.docker("pull", f"{uri}:v1", check=False).returncode != 0
        aws("delete-repository", "--repository-name", "seed/app", "--force")
    finally:
        d.stop()


def test_layer_upload_operations_and_download_url(secured):
    """The ECR push path of the SDKs (InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
    BatchCheckLayerAvailability, PutImage) and GetDownloadUrlForLayer fetched with plain curl."""
    import hashlib
    import json
    from botocore.exceptions import ClientError

    ecr = boto3.client("ecr", endpoint_url=secured, region_name="us-east-1", aws_access_key_id=KEY,
                       aws_secret_access_key=SECRET)
    ecr.create_repository(repositoryName="layers/app")
    layer = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()

    up = ecr.initiate_layer_upload(repositoryName="layers/app")
    assert up["partSize"] > 0
    uid = up["uploadId"]
    r = ecr.upload_layer_part(repositoryName="layers/app", uploadId=uid, partFirstByte=0, partLastByte=99_999,
                              layerPartBlob=layer[:100_000])
    assert r["lastByteReceived"] == 99_999
    with pytest.raises(ClientError) as e:  # out of order
        ecr.upload_layer_part(repositoryName="layers/app", uploadId=uid, partFirstByte=150_000,
                              partLastByte=249_999, layerPartBlob=layer[150_000:250_000])
    assert e.value.response["Error"]["Code"] == "InvalidLayerPartException"
    r = ecr.upload_layer_part(repositoryName="layers/app", uploadId=uid, partFirstByte=100_000,
                              partLastByte=len(layer) - 1, layerPartBlob=layer[100_000:])
    assert r["lastByteReceived"] == len(layer) - 1
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName="layers/app", uploadId=uid, layerDigests=["sha256:" + "1" * 64])
    assert e.value.response["Error"]["Code"] == "InvalidLayerException"

    uid = ecr.initiate_layer_upload(repositoryName="layers/app")["uploadId"]
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName="layers/app", uploadId=uid, layerDigests=[digest])
    assert e.value.response["Error"]["Code"] == "EmptyUploadException"
    ecr.upload_layer_part(repositoryName="layers/app", uploadId=uid, partFirstByte=0, partLastByte=len(layer) - 1,
                          layerPartBlob=layer)
    done = ecr.complete_layer_upload(repositoryName="layers/app", uploadId=uid, layerDigests=[digest])
    assert done["layerDigest"] == digest
    uid = ecr.initiate_layer_upload(repositoryName="layers/app")["uploadId"]
    ecr.upload_layer_part(repositoryName="layers/app", uploadId=uid, partFirstByte=0, partLastByte=len(layer) - 1,
                          layerPartBlob=layer)
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName="layers/app", uploadId=uid, layerDigests=[digest])
    assert e.value.response["Error"]["Code"] == "LayerAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        ecr.upload_layer_part(repositoryName="layers/app", uploadId="00000000-0000-0000-0000-000000000000",
                              partFirstByte=0, partLastByte=0, layerPartBlob=b"x")
    assert e.value.response["Error"]["Code"] == "UploadNotFoundException"

    avail = ecr.batch_check_layer_availability(repositoryName="layers/app",
                                               layerDigests=[digest, "sha256:" + "2" * 64, "nonsense"])
    assert [(l["layerDigest"], l["layerAvailability"], l["layerSize"]) for l in avail["layers"]] == [
        (digest, "AVAILABLE", len(layer))]
    assert sorted(f["failureCode"] for f in avail["failures"]) == ["InvalidLayerDigest", "MissingLayerDigest"]

    # An image from that layer with PutImage, pulled back through /v2 with a token.
    cfg = b'{"architecture":"amd64","os":"linux"}'
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    uid = ecr.initiate_layer_upload(repositoryName="layers/app")["uploadId"]
    ecr.upload_layer_part(repositoryName="layers/app", uploadId=uid, partFirstByte=0, partLastByte=len(cfg) - 1,
                          layerPartBlob=cfg)
    ecr.complete_layer_upload(repositoryName="layers/app", uploadId=uid, layerDigests=[cfg_digest])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest,
                                      "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
                                       "size": len(layer)}]})
    ecr.put_image(repositoryName="layers/app", imageManifest=manifest, imageTag="v1")
    r = requests.get(f"{secured}/v2/layers/app/manifests/v1", auth=("AWS", login_password(secured)), timeout=10)
    assert r.status_code == 200 and r.text == manifest

    url = ecr.get_download_url_for_layer(repositoryName="layers/app", layerDigest=digest)["downloadUrl"]
    assert url.startswith(secured + "/")
    got = subprocess.run(["curl", "-sf", url], capture_output=True, timeout=30)
    assert got.returncode == 0 and got.stdout == layer
    tampered = url.replace("X-Berth-Expires=", "X-Berth-Expires=9")
    assert subprocess.run(["curl", "-sf", tampered], capture_output=True, timeout=30).returncode != 0
    other = url.replace(digest, cfg_digest)
    assert subprocess.run(["curl", "-sf", other], capture_output=True, timeout=30).returncode != 0
    with pytest.raises(ClientError) as e:
        ecr.get_download_url_for_layer(repositoryName="layers/app", layerDigest="sha256:" + "3" * 64)
    assert e.value.response["Error"]["Code"] == "LayersNotFoundException"
