"""Small /v2 helpers shared by the ECR API tests."""

from __future__ import annotations

import hashlib
import json
import time

import requests


def push_image(url: str, repo: str, tags: list[str], seed: str, headers: dict | None = None) -> str:
    """Pushes a small OCI image (one layer, one config, unique to `seed`) through /v2 under each
    tag, or by digest when `tags` is empty; returns the manifest digest."""
    layer, cfg = f"layer {seed}".encode(), json.dumps({"seed": seed}).encode()
    for blob in (layer, cfg):
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={d}", data=blob, timeout=10, headers=headers)
        assert r.status_code == 201, r.text
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(cfg).hexdigest(), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}]}).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    for ref in tags or [digest]:
        r = requests.put(f"{url}/v2/{repo}/manifests/{ref}", data=manifest, timeout=10,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", **(headers or {})})
        assert r.status_code == 201, r.text
    return digest


def wait_for(check, seconds: float = 20, every: float = 0.2):
    """Calls `check` until it returns something truthy or `seconds` pass; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
