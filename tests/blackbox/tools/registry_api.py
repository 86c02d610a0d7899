"""Tiny raw HTTP helpers over the OCI distribution API (requests, loopback only)."""

from __future__ import annotations

from urllib.parse import urlparse

import requests

from tools.images import MANIFEST_ACCEPT

TIMEOUT = 30


def assert_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    assert host == "localhost" or host.startswith("127.") or host == "::1", (
        f"black-box tests only talk to loopback registries, got {url}")


def hostport(url: str) -> str:
    """``http://127.0.0.1:5000`` -> ``127.0.0.1:5000`` (what clients call the registry)."""
    return urlparse(url).netloc


def head_manifest(url: str, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> requests.Response:
    return requests.head(f"{url}/v2/{repo}/manifests/{ref}",
                         headers={"Accept": accept}, timeout=TIMEOUT)


def manifest_digest(url: str, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> str:
    """``Docker-Content-Digest`` of a HEAD on the manifest (asserts 200)."""
    r = head_manifest(url, repo, ref, accept)
    assert r.status_code == 200, f"HEAD {repo}:{ref} -> {r.status_code}"
    d = r.headers.get("Docker-Content-Digest")
    assert d, f"HEAD {repo}:{ref} has no Docker-Content-Digest: {dict(r.headers)}"
    return d


def get_manifest(url: str, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> requests.Response:
    r = requests.get(f"{url}/v2/{repo}/manifests/{ref}", headers={"Accept": accept}, timeout=TIMEOUT)
    assert r.status_code == 200, f"GET manifest {repo}:{ref} -> {r.status_code} {r.text[:300]}"
    return r


def get_blob(url: str, repo: str, digest: str) -> requests.Response:
    return requests.get(f"{url}/v2/{repo}/blobs/{digest}", timeout=TIMEOUT)


def tags_list(url: str, repo: str) -> list[str]:
    """All tags of ``repo`` via ``GET /v2/<name>/tags/list``, following
    ``Link`` pagination (bounded)."""
    tags: list[str] = []
    next_url = f"{url}/v2/{repo}/tags/list"
    for _ in range(100):
        r = requests.get(next_url, timeout=TIMEOUT)
        assert r.status_code == 200, f"tags/list {repo} -> {r.status_code} {r.text[:300]}"
        tags += r.json().get("tags") or []
        link = r.links.get("next", {}).get("url")
        if not link:
            return tags
        next_url = link if link.startswith("http") else url + link
    raise AssertionError("tags/list pagination did not end after 100 pages")
