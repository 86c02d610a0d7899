"""The Amazon ECR API with the real aws CLI and boto3: SigV4, repository operations, errors,
and responses checked against the botocore model's output shapes.

Berth-only (it starts berth with administrator credentials of its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import boto3
import botocore.session
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import spawn_berth
from ecr.oci import push_image

KEY, SECRET = "AKIABERTHTEST0000001", "berth-test-secret-key"
MODEL = botocore.session.get_session().get_service_model("ecr")


@pytest.fixture(scope="module")
def berth(tmp_path_factory):
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET)
    p = spawn_berth(tmp_path_factory.mktemp("ecr") / "data", env=env)
    yield p
    p.stop()


def aws_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    env.update(extra)
    return env


def aws(berth, *args, env=None):
    r = subprocess.run(["aws", "ecr", *args, "--endpoint-url", berth.url, "--output", "json"],
                       capture_output=True, text=True, timeout=60, env=env or aws_env())
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def client(berth, key=KEY, secret=SECRET):
    return boto3.client("ecr", endpoint_url=berth.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))


def check_shape(shape, value, path="$"):
    """`value` has no member outside `shape` and every required member of it."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        extra = set(value) - set(shape.members)
        assert not extra, f"{path}: members outside the model: {extra}"
        for req in shape.required_members:
            assert req in value, f"{path}: required member {req} missing"
        for k, v in value.items():
            check_shape(shape.members[k], v, f"{path}.{k}")
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        for i, v in enumerate(value):
            check_shape(shape.member, v, f"{path}[{i}]")
    elif shape.type_name == "string" and shape.enum:
        assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"


def check_output(op, body):
    check_shape(MODEL.operation_model(op).output_shape, body)


def test_create_describe_delete_with_the_aws_cli(berth):
    rc, out, err = aws(berth, "create-repository", "--repository-name", "cli/app", "--image-tag-mutability",
                       "IMMUTABLE", "--image-scanning-configuration", "scanOnPush=true")
    assert rc == 0, err
    check_output("CreateRepository", out)
    repo = out["repository"]
    host = berth.url.removeprefix("http://")
    assert repo["repositoryUri"] == f"{host}/cli/app"
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"] == {"encryptionType": "AES256"}
    account = repo["registryId"]
    assert len(account) == 12 and account.isdigit()
    assert repo["repositoryArn"] == f"arn:aws:ecr:us-east-1:{account}:repository/cli/app"

    rc, out, err = aws(berth, "describe-repositories", "--repository-names", "cli/app")
    assert rc == 0, err
    check_output("DescribeRepositories", out)
    assert out["repositories"] == [repo]

    rc, _, err = aws(berth, "create-repository", "--repository-name", "cli/app")
    assert rc != 0 and "RepositoryAlreadyExistsException" in err
    rc, _, err = aws(berth, "create-repository", "--repository-name", "Upper/Case")
    assert rc != 0 and "InvalidParameterException" in err and "repositoryName" in err

    rc, out, err = aws(berth, "delete-repository", "--repository-name", "cli/app")
    assert rc == 0, err
    check_output("DeleteRepository", out)
    assert out["repository"]["repositoryName"] == "cli/app"
    rc, _, err = aws(berth, "describe-repositories", "--repository-names", "cli/app")
    assert rc != 0 and "RepositoryNotFoundException" in err


def test_delete_of_a_repository_with_images_needs_force(berth):
    ecr = client(berth)
    ecr.create_repository(repositoryName="full/repo")
    # Push an image through /v2 (the server also serves anonymous OCI in this test).
    cfg = b"{}"
    cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
    assert requests.post(f"{berth.url}/v2/full/repo/blobs/uploads/?digest={cd}", data=cfg, timeout=10).status_code == 201
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 2},
                           "layers": []})
    r = requests.put(f"{berth.url}/v2/full/repo/manifests/v1", data=manifest, timeout=10,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName="full/repo")
    assert e.value.response["Error"]["Code"] == "RepositoryNotEmptyException"
    out = ecr.delete_repository(repositoryName="full/repo", force=True)
    assert out["repository"]["repositoryName"] == "full/repo"
    assert requests.get(f"{berth.url}/v2/full/repo/manifests/v1", timeout=10).status_code == 404


def test_describe_repositories_pages_with_boto3(berth):
    ecr = client(berth)
    names = [f"page/r{i}" for i in range(7)]
    for n in names:
        ecr.create_repository(repositoryName=n)
    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 3} | ({"nextToken": token} if token else {})
        out = ecr.describe_repositories(**kw)
        pages += 1
        seen += [r["repositoryName"] for r in out["repositories"]]
        token = out.get("nextToken")
        if not token:
            break
        assert pages < 20
    assert [n for n in seen if n.startswith("page/")] == names
    assert pages >= 3
    paginated = [r["repositoryName"] for p in ecr.get_paginator("describe_repositories").paginate(
        PaginationConfig={"PageSize": 2}) for r in p["repositories"]]
    assert sorted(set(paginated)) == sorted(paginated) and set(names) <= set(paginated)
    for n in names:
        ecr.delete_repository(repositoryName=n)


def test_authentication_errors_are_the_ones_sdks_expect(berth):
    with pytest.raises(ClientError) as e:
        client(berth, secret="wrong-secret").describe_repositories()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        client(berth, key="AKIANOBODY0000000000").describe_repositories()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    r = requests.post(berth.url + "/", data="{}", timeout=10, headers={
        "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code in (400, 403)
    assert r.json()["__type"] == r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert r.headers.get("x-amzn-RequestId")


def test_unknown_and_unimplemented_operations_say_so(berth):
    rc, _, err = aws(berth, "describe-pull-through-cache-rules")
    assert rc != 0 and "UnknownOperationException" in err and "DescribePullThroughCacheRules" in err
    ecr = client(berth)
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(repositoryNames=["ok/name"], maxResults=5)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_first_start_writes_credentials_the_aws_cli_can_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_ADMIN")}
    p = spawn_berth(tmp_path / "data", env=env)
    try:
        creds = tmp_path / "data" / "credentials"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        text = creds.read_text()
        assert "aws_access_key_id" in text and "aws_secret_access_key" in text
        log = Path(p.log_path).read_text() if hasattr(p, "log_path") else ""
        secret = [l.split("=", 1)[1].strip() for l in text.splitlines() if l.startswith("aws_secret_access_key")][0]
        assert secret not in log, "the secret must never be printed"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_DEFAULT_REGION="us-east-1")
        r = subprocess.run(["aws", "ecr", "describe-repositories", "--endpoint-url", p.url], capture_output=True,
                           text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["repositories"] == []
    finally:
        p.stop()


def test_image_operations_with_boto3(berth):
    ecr = client(berth)
    ecr.create_repository(repositoryName="img/app")
    a = push_image(berth.url, "img/app", ["v1", "latest"], "a")
    b = push_image(berth.url, "img/app", [], "b")

    out = ecr.list_images(repositoryName="img/app")
    check_output("ListImages", {k: v for k, v in out.items() if k != "ResponseMetadata"})
    assert sorted((i["imageDigest"], i.get("imageTag")) for i in out["imageIds"]) == sorted(
        [(a, "latest"), (a, "v1"), (b, None)])
    assert ecr.list_images(repositoryName="img/app", filter={"tagStatus": "UNTAGGED"})["imageIds"] == [{"imageDigest": b}]

    raw = subprocess.run(["aws", "ecr", "describe-images", "--repository-name", "img/app", "--endpoint-url", berth.url],
                         capture_output=True, text=True, timeout=60, env=aws_env())
    assert raw.returncode == 0, raw.stderr
    check_output("DescribeImages", json.loads(raw.stdout))
    details = {d["imageDigest"]: d for d in json.loads(raw.stdout)["imageDetails"]}
    assert details[a]["imageTags"] == ["latest", "v1"] and "imageTags" not in details[b]
    assert details[a]["imageSizeInBytes"] == len(b"layer a") + len(json.dumps({"seed": "a"}))
    assert details[a]["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    one = ecr.describe_images(repositoryName="img/app", imageIds=[{"imageTag": "v1"}])["imageDetails"]
    assert [d["imageDigest"] for d in one] == [a]
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName="img/app", imageIds=[{"imageTag": "nope"}])
    assert e.value.response["Error"]["Code"] == "ImageNotFoundException"

    got = ecr.batch_get_image(repositoryName="img/app", imageIds=[
        {"imageTag": "v1"}, {"imageDigest": b}, {"imageTag": "missing"}, {"imageDigest": a, "imageTag": "nope"}],
        acceptedMediaTypes=["application/vnd.oci.image.manifest.v1+json"])
    assert sorted(i["imageId"]["imageDigest"] for i in got["images"]) == sorted([a, b])
    assert sorted(f["failureCode"] for f in got["failures"]) == ["ImageNotFound", "ImageTagDoesNotMatchDigest"]
    refused = ecr.batch_get_image(repositoryName="img/app", imageIds=[{"imageTag": "v1"}],
                                  acceptedMediaTypes=["application/vnd.docker.distribution.manifest.v2+json"])
    assert refused["images"] == [] and len(refused["failures"]) == 1

    deleted = ecr.batch_delete_image(repositoryName="img/app", imageIds=[{"imageTag": "v1"}, {"imageTag": "gone"}])
    assert deleted["imageIds"] == [{"imageDigest": a, "imageTag": "v1"}]
    assert [f["failureCode"] for f in deleted["failures"]] == ["ImageNotFound"]
    assert ecr.describe_images(repositoryName="img/app", imageIds=[{"imageDigest": a}])["imageDetails"][0][
        "imageTags"] == ["latest"], "another tag keeps the image"
    ecr.batch_delete_image(repositoryName="img/app", imageIds=[{"imageDigest": b}])
    assert [i.get("imageTag") for i in ecr.list_images(repositoryName="img/app")["imageIds"]] == ["latest"]
    with pytest.raises(ClientError) as e:
        ecr.list_images(repositoryName="no/such")
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    ecr.delete_repository(repositoryName="img/app", force=True)


def assert_tag_move_refused(r: requests.Response, tag: str) -> None:
    """A /v2 manifest PUT that would move an immutable tag: 400 MANIFEST_INVALID naming the tag
    and the reason."""
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()["errors"][0]
    assert err["code"] == "MANIFEST_INVALID", r.text
    assert f"tag {tag} " in err["message"] and "immutable" in err["message"], r.text


def test_put_image_and_tag_immutability_on_both_apis(berth):
    ecr = client(berth)
    ecr.create_repository(repositoryName="imm/app", imageTagMutability="IMMUTABLE")
    a = push_image(berth.url, "imm/app", ["v1"], "imm-a")
    manifest_a = requests.get(f"{berth.url}/v2/imm/app/manifests/{a}", timeout=10).text
    # /v2: the same manifest again is fine, another one under the tag is refused.
    r = requests.put(f"{berth.url}/v2/imm/app/manifests/v1", data=manifest_a, timeout=10,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201
    with pytest.raises(AssertionError):
        push_image(berth.url, "imm/app", ["v1"], "imm-b")
    b = push_image(berth.url, "imm/app", [], "imm-b")  # the blobs and manifest by digest are fine
    manifest_b = requests.get(f"{berth.url}/v2/imm/app/manifests/{b}", timeout=10).text
    r = requests.put(f"{berth.url}/v2/imm/app/manifests/v1", data=manifest_b, timeout=10,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    # Moving an immutable tag is MANIFEST_INVALID (the distribution spec has no tag error code),
    # with a message saying why, and the tag stays where it was.
    assert_tag_move_refused(r, "v1")
    assert requests.get(f"{berth.url}/v2/imm/app/manifests/v1", timeout=10).headers["Docker-Content-Digest"] == a
    # ECR: the same rule, with ECR's errors.
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="imm/app", imageManifest=manifest_b, imageTag="v1")
    assert e.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="imm/app", imageManifest=manifest_a, imageTag="v1")
    assert e.value.response["Error"]["Code"] == "ImageAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="imm/app", imageManifest=manifest_b, imageTag="v2", imageDigest=a)
    assert e.value.response["Error"]["Code"] == "ImageDigestDoesNotMatchException"
    missing = json.loads(manifest_b)
    missing["layers"][0]["digest"] = "sha256:" + "0" * 64
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="imm/app", imageManifest=json.dumps(missing), imageTag="v3")
    assert e.value.response["Error"]["Code"] == "LayersNotFoundException"
    # PutImage of a new tag works, and /v2 serves what ECR stored.
    out = ecr.put_image(repositoryName="imm/app", imageManifest=manifest_b, imageTag="v2", imageDigest=b)
    check_output("PutImage", {k: v for k, v in out.items() if k != "ResponseMetadata"})
    assert out["image"]["imageId"] == {"imageDigest": b, "imageTag": "v2"}
    r = requests.get(f"{berth.url}/v2/imm/app/manifests/v2", timeout=10)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == b and r.text == manifest_b
    # Once mutable, the tag moves.
    out = ecr.put_image_tag_mutability(repositoryName="imm/app", imageTagMutability="MUTABLE")
    assert out["imageTagMutability"] == "MUTABLE"
    ecr.put_image(repositoryName="imm/app", imageManifest=manifest_b, imageTag="v1")
    assert ecr.describe_images(repositoryName="imm/app", imageIds=[{"imageTag": "v1"}])["imageDetails"][0][
        "imageDigest"] == b
    assert ecr.describe_repositories(repositoryNames=["imm/app"])["repositories"][0]["imageTagMutability"] == "MUTABLE"
    ecr.delete_repository(repositoryName="imm/app", force=True)


def test_tag_mutability_exclusion_filters_on_both_apis(berth):
    ecr = client(berth)
    out = ecr.create_repository(repositoryName="excl/app", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                                imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest*"}])
    check_output("CreateRepository", {k: v for k, v in out.items() if k != "ResponseMetadata"})
    assert out["repository"]["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest*"}]
    push_image(berth.url, "excl/app", ["latest", "v1"], "excl-a")
    b = push_image(berth.url, "excl/app", ["latest"], "excl-b")  # an excluded tag moves through /v2
    manifest_b = requests.get(f"{berth.url}/v2/excl/app/manifests/{b}", timeout=10).text
    r = requests.put(f"{berth.url}/v2/excl/app/manifests/v1", data=manifest_b, timeout=10,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert_tag_move_refused(r, "v1")
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="excl/app", imageManifest=manifest_b, imageTag="v1")
    assert e.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    # The reverse: mutable, except release tags.
    out = ecr.put_image_tag_mutability(repositoryName="excl/app", imageTagMutability="MUTABLE_WITH_EXCLUSION",
                                       imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD",
                                                                            "filter": "release-*"}])
    assert out["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "release-*"}]
    ecr.put_image(repositoryName="excl/app", imageManifest=manifest_b, imageTag="v1")
    push_image(berth.url, "excl/app", ["release-1"], "excl-c")
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="excl/app", imageManifest=manifest_b, imageTag="release-1")
    assert e.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    # Filters belong to the _WITH_EXCLUSION modes only, and those need at least one.
    for extra in [{"imageTagMutability": "IMMUTABLE",
                   "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "x"}]},
                  {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}]:
        with pytest.raises(ClientError) as e:
            ecr.put_image_tag_mutability(repositoryName="excl/app", **extra)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    ecr.delete_repository(repositoryName="excl/app", force=True)


def test_resource_tags_registry_and_scanning_configuration(berth):
    ecr = client(berth)
    arn = ecr.create_repository(repositoryName="tags/app", tags=[{"Key": "team", "Value": "blue"}])["repository"][
        "repositoryArn"]
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "blue"}]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "red"}])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "red"}]
    ecr.untag_resource(resourceArn=arn, tagKeys=["env"])
    rc, out, err = aws(berth, "list-tags-for-resource", "--resource-arn", arn)
    assert rc == 0, err
    check_output("ListTagsForResource", out)
    assert out["tags"] == [{"Key": "team", "Value": "red"}]
    for bad, code in [([{"Key": "aws:x", "Value": "v"}], "InvalidTagParameterException"),
                      ([{"Key": f"k{i}", "Value": "v"} for i in range(50)], "TooManyTagsException")]:
        with pytest.raises(ClientError) as e:
            ecr.tag_resource(resourceArn=arn, tags=bad)
        assert e.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as e:
        ecr.list_tags_for_resource(resourceArn=arn.replace("us-east-1", "eu-west-1"))
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.list_tags_for_resource(resourceArn=arn.replace("tags/app", "tags/none"))
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"

    out = ecr.put_image_scanning_configuration(repositoryName="tags/app",
                                               imageScanningConfiguration={"scanOnPush": True})
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}
    repo = ecr.describe_repositories(repositoryNames=["tags/app"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}

    rc, out, err = aws(berth, "describe-registry")
    assert rc == 0, err
    check_output("DescribeRegistry", out)
    assert out["registryId"] == arn.split(":")[4] and out["replicationConfiguration"] == {"rules": []}
    ecr.delete_repository(repositoryName="tags/app")


def test_every_implemented_operation_answers_in_the_model_shape(berth):
    """Each served operation's raw JSON has no member outside the botocore output shape and
    every required one."""
    ecr = client(berth)
    raw = {}

    def capture(operation_model, response_dict, **_):
        if response_dict["status_code"] == 200:
            raw[operation_model.name] = json.loads(response_dict["body"] or b"{}")

    ecr.meta.events.register("before-parse.ecr", capture)
    arn = ecr.create_repository(repositoryName="shape/app")["repository"]["repositoryArn"]
    ecr.describe_repositories()
    digest = push_image(berth.url, "shape/app", ["v1"], "shape")
    ecr.list_images(repositoryName="shape/app")
    ecr.describe_images(repositoryName="shape/app")
    ecr.batch_get_image(repositoryName="shape/app", imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}])
    manifest = requests.get(f"{berth.url}/v2/shape/app/manifests/v1", timeout=10).text
    ecr.put_image(repositoryName="shape/app", imageManifest=manifest, imageTag="v2")
    ecr.batch_check_layer_availability(repositoryName="shape/app", layerDigests=[digest, "sha256:" + "4" * 64])
    uid = ecr.initiate_layer_upload(repositoryName="shape/app")["uploadId"]
    ecr.upload_layer_part(repositoryName="shape/app", uploadId=uid, partFirstByte=0, partLastByte=2,
                          layerPartBlob=b"abc")
    ecr.complete_layer_upload(repositoryName="shape/app", uploadId=uid,
                              layerDigests=["sha256:" + hashlib.sha256(b"abc").hexdigest()])
    ecr.get_download_url_for_layer(repositoryName="shape/app", layerDigest="sha256:" + hashlib.sha256(b"abc").hexdigest())
    ecr.get_authorization_token()
    ecr.put_image_tag_mutability(repositoryName="shape/app", imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(repositoryName="shape/app", imageScanningConfiguration={"scanOnPush": False})
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
    ecr.list_tags_for_resource(resourceArn=arn)
    ecr.untag_resource(resourceArn=arn, tagKeys=["k"])
    ecr.describe_registry()
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["ecr:BatchGetImage"]}]})
    ecr.set_repository_policy(repositoryName="shape/app", policyText=policy)
    ecr.get_repository_policy(repositoryName="shape/app")
    ecr.delete_repository_policy(repositoryName="shape/app")
    ecr.put_registry_policy(policyText=policy)
    ecr.get_registry_policy()
    ecr.delete_registry_policy()
    lifecycle = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]})
    ecr.put_lifecycle_policy(repositoryName="shape/app", lifecyclePolicyText=lifecycle)
    ecr.get_lifecycle_policy(repositoryName="shape/app")
    ecr.start_lifecycle_policy_preview(repositoryName="shape/app")
    ecr.get_lifecycle_policy_preview(repositoryName="shape/app")
    ecr.delete_lifecycle_policy(repositoryName="shape/app")
    ecr.batch_delete_image(repositoryName="shape/app", imageIds=[{"imageTag": "v2"}, {"imageTag": "nope"}])
    ecr.delete_repository(repositoryName="shape/app", force=True)

    served = {"CreateRepository", "DescribeRepositories", "ListImages", "DescribeImages", "BatchGetImage", "PutImage",
              "BatchCheckLayerAvailability", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
              "GetDownloadUrlForLayer", "GetAuthorizationToken", "PutImageTagMutability",
              "PutImageScanningConfiguration", "TagResource", "ListTagsForResource", "UntagResource",
              "DescribeRegistry", "BatchDeleteImage", "DeleteRepository", "SetRepositoryPolicy",
              "GetRepositoryPolicy", "DeleteRepositoryPolicy", "PutRegistryPolicy", "GetRegistryPolicy",
              "DeleteRegistryPolicy", "PutLifecyclePolicy", "GetLifecyclePolicy", "StartLifecyclePolicyPreview",
              "GetLifecyclePolicyPreview", "DeleteLifecyclePolicy"}
    assert set(raw) == served
    for op, body in raw.items():
        check_output(op, body)


def test_an_image_id_whose_tag_is_not_its_digests_names_no_image(berth):
    """An image id with digest D and a tag T that is not a tag of D: BatchDeleteImage deletes
    nothing and reports ImageNotFound for it (it used to delete D with all its tags, data
    loss), DescribeImages answers ImageNotFoundException; with T a tag of D both act on D. By tag
    in a repository that does not exist, DescribeImages answers RepositoryNotFoundException."""
    ecr = client(berth)
    ecr.create_repository(repositoryName="pair/app")
    a = push_image(berth.url, "pair/app", ["keep", "also"], "pair-a")
    b = push_image(berth.url, "pair/app", ["other"], "pair-b")
    out = ecr.batch_delete_image(repositoryName="pair/app", imageIds=[{"imageDigest": a, "imageTag": "other"}])
    assert out["imageIds"] == []
    assert [f["failureCode"] for f in out["failures"]] == ["ImageNotFound"]
    listed = sorted((i["imageDigest"], i.get("imageTag")) for i in ecr.list_images(repositoryName="pair/app")["imageIds"])
    assert listed == sorted([(a, "also"), (a, "keep"), (b, "other")]), "nothing was deleted"
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName="pair/app", imageIds=[{"imageDigest": a, "imageTag": "other"}])
    assert e.value.response["Error"]["Code"] == "ImageNotFoundException"
    matched = ecr.describe_images(repositoryName="pair/app", imageIds=[{"imageDigest": a, "imageTag": "keep"}])
    assert [d["imageDigest"] for d in matched["imageDetails"]] == [a]
    out = ecr.batch_delete_image(repositoryName="pair/app", imageIds=[{"imageDigest": b, "imageTag": "other"}])
    assert out["failures"] == [] and [i["imageDigest"] for i in out["imageIds"]] == [b]
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName="pair/none", imageIds=[{"imageTag": "keep"}])
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    ecr.delete_repository(repositoryName="pair/app", force=True)


def test_repository_policy_may_repeat_a_sid_and_put_image_needs_a_media_type(berth):
    """Two departures from ECR found by driving Berth as an ECR user would: SetRepositoryPolicy
    refused a repeated Sid (ECR accepts it); PutImage stored a manifest with no mediaType and no
    imageManifestMediaType as OCI (ECR refuses it with InvalidParameterException)."""
    ecr = client(berth)
    ecr.create_repository(repositoryName="ecr/departures")
    doc = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Same", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"},
        {"Sid": "Same", "Effect": "Deny", "Principal": "*", "Action": "ecr:DeleteLifecyclePolicy"}]}
    ecr.set_repository_policy(repositoryName="ecr/departures", policyText=json.dumps(doc))
    got = json.loads(ecr.get_repository_policy(repositoryName="ecr/departures")["policyText"])
    assert [s["Sid"] for s in got["Statement"]] == ["Same", "Same"]
    push_image(berth.url, "ecr/departures", ["base"], "departures")
    m = json.loads(ecr.batch_get_image(repositoryName="ecr/departures", imageIds=[{"imageTag": "base"}])[
        "images"][0]["imageManifest"])
    del m["mediaType"]
    bare = json.dumps(m)
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="ecr/departures", imageManifest=bare, imageTag="bare")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    ecr.put_image(repositoryName="ecr/departures", imageManifest=bare, imageTag="bare",
                  imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    ecr.delete_repository(repositoryName="ecr/departures", force=True)
