"""What Berth keeps at rest for a data dir, whichever the backend: blob and upload bytes (files
under the data dir, or objects in the cluster's S3 bucket, with the same relative names:
``blobs/sha256/<2 hex>/<hex>``, ``uploads/<id>/...``) and the metadata (the SQLite files, or a
dump of the cluster's PostgreSQL database).

    s = store.of(data_dir)
    s.exists(store.blob_key(digest)); s.read(key); s.write(key, b"..."); s.delete(key)
    s.keys("blobs/")   # sorted relative names
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tools import cluster


def blob_key(digest: str) -> str:
    alg, hexd = digest.split(":", 1)
    return f"blobs/{alg}/{hexd[:2]}/{hexd}"


class FsStore:
    """Files under the data dir (the embedded backend)."""

    def __init__(self, data_dir):
        self.root = Path(data_dir)

    def keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix.endswith("/") else self.root
        if not base.exists():
            return []
        out = [str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file()]
        return sorted(k for k in out if k.startswith(prefix))

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        (self.root / key).write_bytes(data)

    def delete(self, key: str) -> None:
        (self.root / key).unlink()

    def __repr__(self) -> str:
        return f"FsStore({self.root})"


class S3Store:
    """The objects of the data dir's bucket (the cluster backend)."""

    def __init__(self, data_dir):
        cluster.cluster_env(data_dir)  # the bucket exists
        self.bucket = cluster.names_for(data_dir)[1]
        self.client = cluster.s3_client()

    def keys(self, prefix: str = "") -> list[str]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def __repr__(self) -> str:
        return f"S3Store({self.bucket})"


def of(data_dir) -> FsStore | S3Store:
    """Where the bytes of the Berth on ``data_dir`` are."""
    if cluster.is_cluster() and cluster.uses_engines():
        return S3Store(data_dir)
    return FsStore(data_dir)


def blobs_not_hashing_to_names(data_dir) -> list[str]:
    """Stored blobs (``blobs/<alg>/<2 hex>/<hex>``) whose bytes do not hash to their name."""
    s = of(data_dir)
    bad = []
    for key in s.keys("blobs/"):
        parts = key.split("/")
        alg, hexd = parts[1], parts[-1]
        if hashlib.new(alg, s.read(key)).hexdigest() != hexd:
            bad.append(key)
    return bad


def metadata_at_rest(data_dir) -> dict[str, bytes]:
    """The metadata as a reader of the disk or the database would see it: with the embedded
    backend, every file of the data dir; with the cluster, the data dir's files plus a
    ``pg_dump`` of its database (key ``pg_dump:<database>``)."""
    root = Path(data_dir)
    out = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    if cluster.is_cluster() and cluster.uses_engines():
        cluster.cluster_env(data_dir)
        db = cluster.names_for(data_dir)[0]
        out[f"pg_dump:{db}"] = cluster.engines().pg.dump(db)
    return out
