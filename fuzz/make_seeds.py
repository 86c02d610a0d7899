"""Writes the seed corpus (fuzz/seeds/<target>/seed-*): valid inputs of each parser, so the
fuzzer starts from the accepted shapes. Signed requests are made by botocore at a fixed time and
tokens with a fixed key, matching the constants in the targets. Run from the repository root:
python3 fuzz/make_seeds.py"""

import base64
import datetime
import hashlib
import hmac
import json
import re
import struct
from pathlib import Path
from unittest import mock

import botocore.session
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

OUT = Path("fuzz/seeds")
D256 = "sha256:" + "a" * 64
D256B = "sha256:" + "b" * 64
D512 = "sha512:" + "c" * 128


def write(target, seeds):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for i, s in enumerate(seeds):
        (d / f"seed-{i:02}").write_bytes(s if isinstance(s, bytes) else s.encode())


METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
write("oci_endpoint", [
    bytes([METHODS.index(m)]) + p.encode() for m, p in [
        ("GET", "_catalog?n=10&last=team%2Fapp"), ("GET", "team/app/tags/list?n=2&last=v1"),
        ("GET", f"team/app/api/manifests/{D256}"), ("PUT", "a/b/c/manifests/v1.0"),
        ("HEAD", f"x/blobs/{D512}"), ("DELETE", f"x/blobs/{D256}"),
        ("POST", f"x/y/blobs/uploads/?mount={D256}&from=other%2Frepo"),
        ("PATCH", "x/y/blobs/uploads/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        ("PUT", f"x/blobs/uploads/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b?digest={D256}"),
        ("GET", f"x/referrers/{D256}?artifactType=application%2Fvnd.example+json"),
    ]])

write("oci_ranges", [struct.pack("<Q", size << 1) + r.encode() for size, r in [
    (1000, "bytes=0-99"), (1000, "bytes=-100"), (1000, "bytes=900-"), (10, "bytes=5-4"), (0, "bytes=0-0"),
    (1 << 40, "bytes 0-1048575/1099511627776"), (100, "0-99"), (100, "bytes=0-10,20-30"),
]])

layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D256, "size": 32}
config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D256B, "size": 7}
oci_manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": [layer], "annotations": {"a": "b"}}
artifact = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.sbom", "config": config, "layers": [],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D512, "size": 100}}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D256, "size": 400,
     "platform": {"architecture": "amd64", "os": "linux"}}]}
docker = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "config": {**config, "mediaType": "application/vnd.docker.container.image.v1+json"},
          "layers": [{**layer, "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                      "urls": ["https://example.com/layer"]}]}
write("manifest", [bytes([ct]) + json.dumps(m).encode() for ct, m in [
    (0, oci_manifest), (2, oci_manifest), (0, artifact), (3, index), (0, index), (4, docker), (1, docker)]])

write("names", ["team/app", "a/b-c/d_e/f.g", "v1.0.0", "latest", D256, D512, "sha256:ABC",
                "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "a" * 256, "my__repo"])

# SigV4: one header-signed and one presigned ECR request, at the targets' fixed time.
KEY_ID, SECRET = "AKIAFUZZFUZZFUZZFUZZ", "fuzz-secret-access-key"
creds = Credentials(KEY_ID, SECRET)
fixed = datetime.datetime(2024, 1, 1, 0, 0, 0)


def lines(method, url_path, query, headers):
    return "\n".join([method, url_path, query] + [f"{k}:{v}" for k, v in headers] + [""])


with mock.patch("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: fixed):
    seeds = []
    req = AWSRequest(method="POST", url="http://127.0.0.1:5000/", data=b"",
                     headers={"X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(creds, "ecr", "us-east-1").add_auth(req)
    seeds.append(lines("POST", "/", "", [("host", "127.0.0.1:5000")] + list(req.headers.items())))
    req = AWSRequest(method="GET", url="http://127.0.0.1:5000/v2/team/app/blobs/" + D256, data=b"")
    SigV4QueryAuth(creds, "ecr", "us-east-1", expires=600).add_auth(req)
    path, _, query = req.url.partition("://")[2].partition("/")[2].partition("?")
    seeds.append(lines("GET", "/" + path, query, [("host", "127.0.0.1:5000")]))
write("sigv4", seeds)

# ECR bodies: the requests of botocore's examples, each under its operation.
ops = re.findall(r"Self::(\w+),", Path("crates/ecr-model/src/generated/ecr.rs").read_text()
                 .split("pub const ALL: &'static [Self] = &[", 1)[1].split("];", 1)[0])
loader = botocore.session.get_session().get_component("data_loader")
examples = loader.load_service_model("ecr", "examples-1")["examples"]
seeds = [bytes([ops.index(op)]) + json.dumps(ex["input"]).encode()
         for op, exs in sorted(examples.items()) for ex in exs if op in ops]
seeds.append(bytes([ops.index("PutImage")]) + json.dumps(
    {"repositoryName": "team/app", "imageManifest": json.dumps(oci_manifest), "imageTag": "v1"}).encode())
seeds.append(bytes([ops.index("CreateRepository")]) + json.dumps(
    {"repositoryName": "team/app", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
     "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest*"}],
     "tags": [{"Key": "team", "Value": "blue"}]}).encode())
write("ecr_request", seeds)

identity = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Pull", "Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:Get*"],
     "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/team/*",
     "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
                   "Bool": {"aws:SecureTransport": "false"},
                   "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"},
                   "NumericGreaterThanEquals": {"aws:EpochTime": "0"}}},
    {"Effect": "Deny", "NotAction": "ecr:*", "NotResource": ["arn:aws:ecr:*:*:repository/public/*"],
     "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": ["env*"]}, "Null": {"ecr:ResourceTag/team": "false"}}}]}
resource = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Cross", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::444455556666:root", "111122223333"]},
     "Action": "ecr:*", "Condition": {"StringEqualsIfExists": {"aws:PrincipalAccount": "444455556666"},
                                       "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}},
    {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "ecr:PutImage"}]}
write("iam_policy", [b"\x00" + json.dumps(identity).encode(), b"\x01" + json.dumps(resource).encode(),
                     b"\x01" + json.dumps({"Version": "2012-10-17", "Statement": {
                         "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}}).encode()])

write("lifecycle_policy", [json.dumps({"rules": r}) for r in [
    [{"rulePriority": 1, "description": "untagged", "selection": {
        "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
      "action": {"type": "expire"}}],
    [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType":
                                       "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
     {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["release-*", "*prod*"],
                                       "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 3},
      "action": {"type": "expire"}},
     {"rulePriority": 10, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                        "countNumber": 3}, "action": {"type": "expire"}}],
]])

# Registry tokens and signed URLs made with the targets' key, expiring in 2100.
KEY = bytes([7] * 32)
CONTEXT = re.search(rb'const CONTEXT: &\[u8\] = b"(.*?)";', Path("crates/auth/src/token.rs").read_bytes()).group(1)
CONTEXT = CONTEXT.decode().encode().decode("unicode_escape").encode()
URL_CONTEXT = b"berth download url v1\n"
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
EXP = 4102444800


def token(account, principal):
    payload = f"{EXP}:{account}:{principal}".encode()
    return b64(payload) + "." + b64(hmac.new(KEY, CONTEXT + payload, hashlib.sha256).digest())


def url(path, account, principal):
    cred = b64(f"{account}:{principal}".encode())
    mac = b64(hmac.new(KEY, URL_CONTEXT + f"{path}\n{EXP}\n{cred}".encode(), hashlib.sha256).digest())
    return f"{path}\n{cred}\n{EXP}\n{mac}"


write("registry_token", [token("111122223333", "arn:aws:iam::111122223333:user/alice"),
                         token("111122223333", "arn:aws:iam::111122223333:user/a:b"),
                         url("/v2/team/app/blobs/" + D256, "111122223333", "arn:aws:iam::111122223333:user/alice")])
