"""OCI push operations over ``tools.rawhttp``: blob uploads (single POST,
POST+PUT, POST+PATCH...+PUT) and manifest PUTs, plus small builders for test
manifests. Used by the crash and disconnect tests."""

from __future__ import annotations

from typing import Iterable
from urllib.parse import urlencode, urlparse, urlunparse, parse_qsl

from tools import rawhttp
from tools.images import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, canonical_json, sha256_digest


class UnexpectedStatus(AssertionError):
    def __init__(self, what: str, resp: rawhttp.Resp, expected):
        self.resp = resp
        super().__init__(f"{what}: HTTP {resp.status} (expected {expected}): "
                         f"{resp.body[:300]!r}")


def expect(resp: rawhttp.Resp, what: str, *statuses: int) -> rawhttp.Resp:
    if resp.status not in statuses:
        raise UnexpectedStatus(what, resp, statuses)
    return resp


def with_query(url: str, **params: str) -> str:
    """Add query parameters to an upload ``Location`` that may have its own."""
    u = urlparse(url)
    q = parse_qsl(u.query, keep_blank_values=True) + list(params.items())
    return urlunparse(u._replace(query=urlencode(q)))


def start_upload(base: str, repo: str, timeout: float = rawhttp.DEFAULT_TIMEOUT) -> str:
    """POST /v2/<repo>/blobs/uploads/ -> absolute upload URL."""
    r = expect(rawhttp.request(f"{base}/v2/{repo}/blobs/uploads/", "POST", timeout=timeout),
               f"POST upload {repo}", 202)
    loc = r.header("location")
    assert loc, f"202 without Location: {r.headers}"
    return rawhttp.absolute(base, loc)


def put_blob(base: str, repo: str, data: bytes, timeout: float = rawhttp.DEFAULT_TIMEOUT) -> str:
    """POST + single PUT with the whole body; returns the digest (asserts 201)."""
    d = sha256_digest(data)
    loc = start_upload(base, repo, timeout)
    expect(rawhttp.request(with_query(loc, digest=d), "PUT", data,
                           {"Content-Type": "application/octet-stream"}, timeout=timeout),
           f"PUT blob {repo}@{d}", 201)
    return d


def chunked_blob(base: str, repo: str, data: bytes, chunk: int,
                 timeout: float = rawhttp.DEFAULT_TIMEOUT) -> str:
    """POST, PATCH each ``chunk`` with Content-Range, PUT ?digest (no body)."""
    d = sha256_digest(data)
    loc = start_upload(base, repo, timeout)
    for off in range(0, len(data), chunk):
        piece = data[off:off + chunk]
        r = expect(rawhttp.request(loc, "PATCH", piece, {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{off}-{off + len(piece) - 1}"}, timeout=timeout),
            f"PATCH {repo} @{off}", 202)
        loc = rawhttp.absolute(base, r.header("location") or loc)
    expect(rawhttp.request(with_query(loc, digest=d), "PUT", None, timeout=timeout),
           f"PUT (close) {repo}@{d}", 201)
    return d


def put_manifest(base: str, repo: str, ref: str, body: bytes | Iterable[bytes],
                 media_type: str = OCI_MANIFEST, length: int | None = None,
                 timeout: float = rawhttp.DEFAULT_TIMEOUT) -> rawhttp.Resp:
    headers = {"Content-Type": media_type}
    if length is not None:
        headers["Content-Length"] = str(length)
    return rawhttp.request(f"{base}/v2/{repo}/manifests/{ref}", "PUT", body, headers,
                           timeout=timeout)


def config_blob(label: str, layer_diff_ids: list[str]) -> bytes:
    return canonical_json({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"org.berth.test": label}},
        "rootfs": {"type": "layers", "diff_ids": layer_diff_ids},
    })


def image_manifest(config: bytes, layers: list[bytes], note: str = "") -> bytes:
    """An OCI image manifest referencing ``config`` and ``layers`` (bytes of
    blobs that must already be in the repository)."""
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(b), "size": len(b)}
                   for b in layers],
    }
    if note:
        m["annotations"] = {"org.berth.test.note": note}
    return canonical_json(m)


def get(base: str, path: str, method: str = "GET", accept: str | None = None,
        timeout: float = rawhttp.DEFAULT_TIMEOUT) -> rawhttp.Resp:
    headers = {"Accept": accept} if accept else {}
    return rawhttp.request(f"{base}{path}", method, None, headers, timeout=timeout)
