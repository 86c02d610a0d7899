#!/usr/bin/env python3
"""The S3 side of `berth-bench scaleout` (crates/bench/src/scaleout.rs), with boto3.

    s3tool.py [--endpoint URL --access-key K --secret-key S --region R] COMMAND ...

Commands:
  mkbucket BUCKET...            create the buckets (one that is already ours is fine)
  rmbucket BUCKET...            delete every object and open multipart upload of the buckets,
                                then the buckets (only those named: never a listing of buckets)
  delete BUCKET KEY...          delete these objects (a missing one is fine)
  ceiling --bucket B --file F --sha256 HEX --object KEY
                                the ceiling of a plain S3 client: upload and download the bytes
                                of F (read into memory first) with upload_fileobj and
                                download_fileobj (boto3's defaults: 8 MiB parts, 10 threads),
                                then with one put_object and one get_object; each download is
                                checked against HEX after its timing, and the object is deleted.
                                Prints one JSON line of MB/s (10^6 bytes a second).

The endpoint and keys may also come from BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_ACCESS_KEY_ID,
BERTH_TEST_S3_SECRET_ACCESS_KEY and BERTH_TEST_S3_REGION. Path-style requests, SigV4, no
checksums but those S3 requires (as RGW wants), bounded retries and timeouts.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time


def client(a):
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=120,
                 max_pool_connections=16, request_checksum_calculation="when_required",
                 response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=a.endpoint, aws_access_key_id=a.access_key,
                        aws_secret_access_key=a.secret_key,
                        region_name=a.region, config=cfg)


def mkbucket(s3, buckets):
    from botocore.exceptions import ClientError  # noqa: PLC0415
    for b in buckets:
        try:
            s3.create_bucket(Bucket=b)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise


def rmbucket(s3, buckets):
    from botocore.exceptions import ClientError  # noqa: PLC0415
    for b in buckets:
        try:
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=b):
                for u in page.get("Uploads", []):
                    s3.abort_multipart_upload(Bucket=b, Key=u["Key"], UploadId=u["UploadId"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=b, Delete={"Objects": keys, "Quiet": True})
            s3.delete_bucket(Bucket=b)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise


def delete(s3, bucket, keys):
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})


def ceiling(s3, a):
    with open(a.file, "rb") as f:
        data = f.read()
    n = len(data)
    out = {}

    def check(buf, what):
        if len(buf) != n or hashlib.sha256(buf).hexdigest() != a.sha256:
            sys.exit(f"s3tool ceiling: {what} returned other bytes ({len(buf)} of {n})")

    # boto3's managed transfers, default configuration.
    t = time.perf_counter()
    s3.upload_fileobj(io.BytesIO(data), a.bucket, a.object)
    out["multipart_up"] = n / 1e6 / (time.perf_counter() - t)
    sink = io.BytesIO()
    t = time.perf_counter()
    s3.download_fileobj(a.bucket, a.object, sink)
    out["multipart_down"] = n / 1e6 / (time.perf_counter() - t)
    check(sink.getbuffer(), "download_fileobj")
    del sink
    s3.delete_object(Bucket=a.bucket, Key=a.object)

    # One request each way.
    key = a.object + ".single"
    t = time.perf_counter()
    s3.put_object(Bucket=a.bucket, Key=key, Body=data)
    out["single_up"] = n / 1e6 / (time.perf_counter() - t)
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    t = time.perf_counter()
    body = s3.get_object(Bucket=a.bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(1 << 20):
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    out["single_down"] = n / 1e6 / (time.perf_counter() - t)
    del view
    check(buf[:got], "get_object")
    s3.delete_object(Bucket=a.bucket, Key=key)
    print(json.dumps(out), flush=True)


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=env("BERTH_TEST_S3_ENDPOINT"))
    p.add_argument("--access-key", default=env("BERTH_TEST_S3_ACCESS_KEY_ID"))
    p.add_argument("--secret-key", default=env("BERTH_TEST_S3_SECRET_ACCESS_KEY"))
    p.add_argument("--region", default=env("BERTH_TEST_S3_REGION") or "us-east-1")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("mkbucket").add_argument("buckets", nargs="+")
    sub.add_parser("rmbucket").add_argument("buckets", nargs="+")
    d = sub.add_parser("delete")
    d.add_argument("bucket")
    d.add_argument("keys", nargs="+")
    c = sub.add_parser("ceiling")
    for k in ("--bucket", "--file", "--sha256", "--object"):
        c.add_argument(k, required=True)
    a = p.parse_args()
    if not (a.endpoint and a.access_key and a.secret_key):
        sys.exit("s3tool: the endpoint and keys are needed (--endpoint, --access-key, --secret-key)")
    s3 = client(a)
    if a.cmd == "mkbucket":
        mkbucket(s3, a.buckets)
    elif a.cmd == "rmbucket":
        rmbucket(s3, a.buckets)
    elif a.cmd == "delete":
        delete(s3, a.bucket, a.keys)
    else:
        ceiling(s3, a)


if __name__ == "__main__":
    main()
