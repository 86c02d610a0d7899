"""A small OCI Distribution (v1.1) client for black-box tests.

Deliberately thin: every call returns the raw ``requests.Response`` (or a tiny
result object) so tests can assert on status codes and headers themselves.
Helpers that *must* succeed (``push_blob``, ``push_manifest``...) raise
``OciError`` with the full response attached when the registry misbehaves.

Importable by other test suites::

    from conformance.ociclient import OciClient, digest_of, oci_image_manifest
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

# --------------------------------------------------------------------------
# Media types
# --------------------------------------------------------------------------

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

ALL_MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST)

# The OCI "empty descriptor" (image-spec v1.1): content is the two bytes `{}`.
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_DESCRIPTOR = {"mediaType": MT_OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}

# Grammar from the spec (repository names, tags) and image-spec (digests).
NAME_RE = re.compile(
    r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
)
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
ERROR_CODE_RE = re.compile(r"^[A-Z_]+$")

DEFAULT_TIMEOUT = 30.0


# --------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """`<alg>:<hex>` digest of ``data`` (sha256 or sha512)."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_digest(data: bytes, digest: str) -> bool:
    """True when ``digest`` (any hashlib algorithm) matches ``data``."""
    alg, _, hexpart = digest.partition(":")
    try:
        return hashlib.new(alg, data).hexdigest() == hexpart
    except ValueError:
        return False


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def canonical_json(obj) -> bytes:
    """Stable compact JSON encoding; the exact bytes are what gets digested."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def resolve_location(request_url: str, location: str) -> str:
    """Resolve a ``Location`` header (absolute URL, absolute path or relative
    path) against the URL of the request that returned it, per RFC 7231 7.1.2.
    Query strings in ``location`` are preserved verbatim."""
    return urljoin(request_url, location)


def add_query(url: str, **params) -> str:
    """Append query parameters to ``url`` without disturbing any that are
    already there (upload locations may carry opaque state in their query)."""
    parts = urlsplit(url)
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    query = f"{parts.query}&{extra}" if parts.query and extra else (parts.query or extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def parse_link_next(link_header: str | None, request_url: str) -> str | None:
    """Return the absolute URL of the ``rel="next"`` target of an RFC 5988
    ``Link`` header, or None."""
    if not link_header:
        return None
    for m in _LINK_RE.finditer(link_header):
        target, params = m.group(1), m.group(2)
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "rel" and "next" in v.strip().strip('"').split():
                return urljoin(request_url, target)
    return None


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def unique_repo(prefix: str = "conf", label: str = "t") -> str:
    """A fresh repository name that matches the spec's name grammar."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40].strip("-") or "t"
    return f"{prefix}/{slug}-{uuid.uuid4().hex[:8]}"


def media_type_of(resp: requests.Response) -> str:
    """Content-Type without parameters (the spec says clients ignore them)."""
    return resp.headers.get("Content-Type", "").split(";")[0].strip().lower()


# --------------------------------------------------------------------------
# Manifest builders (return exact bytes; digest them with digest_of)
# --------------------------------------------------------------------------


def descriptor(media_type: str, data: bytes | None = None, *, digest: str | None = None,
               size: int | None = None, **extra) -> dict:
    if data is not None:
        digest = digest or digest_of(data)
        size = len(data) if size is None else size
    d = {"mediaType": media_type, "digest": digest, "size": size}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def oci_image_manifest(config: dict, layers: list[dict], *, subject: dict | None = None,
                       artifact_type: str | None = None, annotations: dict | None = None) -> bytes:
    m = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST}
    if artifact_type is not None:
        m["artifactType"] = artifact_type
    m["config"] = config
    m["layers"] = layers
    if subject is not None:
        m["subject"] = subject
    if annotations is not None:
        m["annotations"] = annotations
    return canonical_json(m)


def oci_index(manifests: list[dict], *, subject: dict | None = None,
              artifact_type: str | None = None, annotations: dict | None = None) -> bytes:
    m = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX}
    if artifact_type is not None:
        m["artifactType"] = artifact_type
    m["manifests"] = manifests
    if subject is not None:
        m["subject"] = subject
    if annotations is not None:
        m["annotations"] = annotations
    return canonical_json(m)


def docker_manifest(config: dict, layers: list[dict]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST,
                           "config": config, "layers": layers})


def docker_manifest_list(manifests: list[dict]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST,
                           "manifests": manifests})


def platform(arch: str = "amd64", os_: str = "linux") -> dict:
    return {"architecture": arch, "os": os_}


def image_config(seed: str | None = None) -> bytes:
    """A minimal but valid OCI/Docker image config; ``seed`` makes it unique."""
    cfg = {"architecture": "amd64", "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": []},
           "config": {"Labels": {"seed": seed or uuid.uuid4().hex}}}
    return canonical_json(cfg)


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------


class OciError(AssertionError):
    """An operation that was required to succeed did not."""

    def __init__(self, what: str, resp: requests.Response):
        body = resp.content[:500] if resp.content is not None else b""
        super().__init__(
            f"{what}: {resp.request.method} {resp.request.url} -> {resp.status_code} "
            f"headers={dict(resp.headers)} body={body!r}")
        self.resp = resp


@dataclass
class Image:
    """A pushed single-platform image: config + layers + manifest."""
    repo: str
    manifest: bytes
    digest: str
    media_type: str
    config: bytes
    layers: list[bytes] = field(default_factory=list)

    @property
    def descriptor(self) -> dict:
        return descriptor(self.media_type, self.manifest)


class OciClient:
    """Minimal OCI distribution client bound to one registry base URL."""

    def __init__(self, base_url: str, session: requests.Session | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            # Never pick up proxies from the environment: traffic stays on loopback.
            session.trust_env = False
        self.s = session

    # -- plumbing ---------------------------------------------------------

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base + (path if path.startswith("/") else "/" + path)

    def request(self, method: str, path_or_url: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        return self.s.request(method, self.url(path_or_url), **kw)

    def get(self, p, **kw):
        return self.request("GET", p, **kw)

    def head(self, p, **kw):
        return self.request("HEAD", p, **kw)

    def put(self, p, **kw):
        return self.request("PUT", p, **kw)

    def post(self, p, **kw):
        return self.request("POST", p, **kw)

    def patch(self, p, **kw):
        return self.request("PATCH", p, **kw)

    def delete(self, p, **kw):
        return self.request("DELETE", p, **kw)

    @staticmethod
    def location(resp: requests.Response) -> str:
        """Absolute form of the response's Location header."""
        loc = resp.headers.get("Location")
        if not loc:
            raise OciError("response has no Location header", resp)
        return resolve_location(resp.url, loc)

    # -- base ---------------------------------------------------------------

    def ping(self) -> requests.Response:
        return self.get("/v2/")

    # -- blob uploads ---------------------------------------------------------

    def start_upload(self, repo: str, **params) -> requests.Response:
        """POST /v2/<repo>/blobs/uploads/ (with optional mount/from/digest params)."""
        path = add_query(f"/v2/{repo}/blobs/uploads/", **params)
        return self.post(path, headers={"Content-Length": "0"})

    def start_upload_session(self, repo: str) -> str:
        r = self.start_upload(repo)
        if r.status_code != 202:
            raise OciError("starting an upload session", r)
        return self.location(r)

    def patch_chunk(self, location: str, data: bytes, start: int | None = None,
                    headers: dict | None = None) -> requests.Response:
        h = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        if start is not None:
            h["Content-Range"] = f"{start}-{start + len(data) - 1}"
        if headers:
            h.update(headers)
        return self.patch(location, data=data, headers=h)

    def patch_stream(self, location: str, chunks: Iterable[bytes]) -> requests.Response:
        """Streamed PATCH: no Content-Range/Content-Length, chunked transfer encoding."""
        def gen() -> Iterator[bytes]:
            yield from chunks
        return self.patch(location, data=gen(), headers={"Content-Type": "application/octet-stream"})

    def put_upload(self, location: str, digest: str, data: bytes = b"",
                   content_range: str | None = None) -> requests.Response:
        h = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        if content_range:
            h["Content-Range"] = content_range
        return self.put(add_query(location, digest=digest), data=data, headers=h)

    def upload_status(self, location: str) -> requests.Response:
        return self.get(location)

    def cancel_upload(self, location: str) -> requests.Response:
        return self.delete(location)

    def push_blob(self, repo: str, data: bytes, algorithm: str = "sha256") -> str:
        """POST + PUT monolithic upload (works on every conformant registry)."""
        digest = digest_of(data, algorithm)
        loc = self.start_upload_session(repo)
        r = self.put_upload(loc, digest, data)
        if r.status_code != 201:
            raise OciError(f"pushing blob {digest}", r)
        return digest

    def push_blob_single_post(self, repo: str, data: bytes) -> requests.Response:
        """Single-request monolithic upload: POST ...?digest=<d> with the body."""
        path = add_query(f"/v2/{repo}/blobs/uploads/", digest=digest_of(data))
        return self.post(path, data=data, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})

    def push_blob_chunked(self, repo: str, data: bytes, chunk_size: int) -> str:
        digest = digest_of(data)
        loc = self.start_upload_session(repo)
        for off in range(0, len(data), chunk_size):
            r = self.patch_chunk(loc, data[off:off + chunk_size], start=off)
            if r.status_code != 202:
                raise OciError(f"PATCH chunk at {off}", r)
            loc = self.location(r)
        r = self.put_upload(loc, digest)
        if r.status_code != 201:
            raise OciError(f"closing chunked upload {digest}", r)
        return digest

    # -- blobs --------------------------------------------------------------

    def head_blob(self, repo: str, digest: str, **kw) -> requests.Response:
        return self.head(f"/v2/{repo}/blobs/{digest}", **kw)

    def get_blob(self, repo: str, digest: str, **kw) -> requests.Response:
        return self.get(f"/v2/{repo}/blobs/{digest}", **kw)

    def delete_blob(self, repo: str, digest: str) -> requests.Response:
        return self.delete(f"/v2/{repo}/blobs/{digest}")

    def mount_blob(self, repo: str, digest: str, from_repo: str | None) -> requests.Response:
        return self.start_upload(repo, mount=digest, **({"from": from_repo} if from_repo else {}))

    # -- manifests ------------------------------------------------------------

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str,
                     **kw) -> requests.Response:
        return self.put(f"/v2/{repo}/manifests/{ref}", data=body,
                        headers={"Content-Type": media_type}, **kw)

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        r = self.put_manifest(repo, ref, body, media_type)
        if r.status_code != 201:
            raise OciError(f"pushing manifest {repo}:{ref}", r)
        return digest_of(body)

    def get_manifest(self, repo: str, ref: str, accept: str | Iterable[str] | None = ALL_MANIFEST_TYPES,
                     method: str = "GET") -> requests.Response:
        headers = {}
        if accept is not None:
            headers["Accept"] = accept if isinstance(accept, str) else ", ".join(accept)
        return self.request(method, f"/v2/{repo}/manifests/{ref}", headers=headers)

    def head_manifest(self, repo: str, ref: str, accept=ALL_MANIFEST_TYPES) -> requests.Response:
        return self.get_manifest(repo, ref, accept, method="HEAD")

    def delete_manifest(self, repo: str, ref: str) -> requests.Response:
        return self.delete(f"/v2/{repo}/manifests/{ref}")

    # -- discovery ------------------------------------------------------------

    def tags_list(self, repo: str, n: int | None = None, last: str | None = None) -> requests.Response:
        return self.get(add_query(f"/v2/{repo}/tags/list", n=n, last=last))

    def catalog(self, n: int | None = None, last: str | None = None) -> requests.Response:
        return self.get(add_query("/v2/_catalog", n=n, last=last))

    def referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> requests.Response:
        return self.get(add_query(f"/v2/{repo}/referrers/{digest}", artifactType=artifact_type))

    def paginate(self, first_url: str, key: str, max_pages: int = 10_000) -> tuple[list, list[requests.Response]]:
        """Follow ``Link: rel="next"`` from ``first_url``; returns (items, responses).
        Bounded by ``max_pages``."""
        items: list = []
        responses: list[requests.Response] = []
        url: str | None = self.url(first_url)
        for _ in range(max_pages):
            if url is None:
                return items, responses
            r = self.get(url)
            if r.status_code != 200:
                raise OciError(f"paginating {key}", r)
            responses.append(r)
            items.extend(r.json().get(key) or [])
            url = parse_link_next(r.headers.get("Link"), r.url)
        raise AssertionError(f"pagination did not terminate within {max_pages} pages")

    # -- composite helpers ----------------------------------------------------

    def push_image(self, repo: str, ref: str | None = None, *, n_layers: int = 1,
                   layer_size: int = 256, docker: bool = False,
                   annotations: dict | None = None) -> Image:
        """Push config + random layers + manifest; tag with ``ref`` or push by digest."""
        cfg = image_config()
        layers = [random_bytes(layer_size) for _ in range(n_layers)]
        self.push_blob(repo, cfg)
        for layer in layers:
            self.push_blob(repo, layer)
        if docker:
            mt = MT_DOCKER_MANIFEST
            body = docker_manifest(descriptor(MT_DOCKER_CONFIG, cfg),
                                   [descriptor(MT_DOCKER_LAYER, layer) for layer in layers])
        else:
            mt = MT_OCI_MANIFEST
            body = oci_image_manifest(descriptor(MT_OCI_CONFIG, cfg),
                                      [descriptor(MT_OCI_LAYER, layer) for layer in layers],
                                      annotations=annotations)
        digest = self.push_manifest(repo, ref or digest_of(body), body, mt)
        return Image(repo=repo, manifest=body, digest=digest, media_type=mt,
                     config=cfg, layers=layers)

    def push_artifact(self, repo: str, subject: dict | None, artifact_type: str,
                      annotations: dict | None = None, ref: str | None = None,
                      payload: bytes | None = None) -> tuple[bytes, str, requests.Response]:
        """Push an OCI 1.1 artifact manifest (empty config) referring to ``subject``.
        Returns (manifest bytes, digest, PUT response); the caller checks status."""
        self.push_blob(repo, EMPTY_JSON)
        layers = [dict(EMPTY_DESCRIPTOR)]
        if payload is not None:
            self.push_blob(repo, payload)
            layers = [descriptor("application/octet-stream", payload)]
        body = oci_image_manifest(dict(EMPTY_DESCRIPTOR), layers, subject=subject,
                                  artifact_type=artifact_type, annotations=annotations)
        digest = digest_of(body)
        r = self.put_manifest(repo, ref or digest, body, MT_OCI_MANIFEST)
        return body, digest, r
