"""Assertions shared by the conformance tests."""

from __future__ import annotations

import json
import re

import requests

from conformance.ociclient import ERROR_CODE_RE, media_type_of, verify_digest

# Error codes of the distribution-spec v1.1 error table ("code-1" .. "code-14").
SPEC_ERROR_CODES = frozenset({
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
    "TOOMANYREQUESTS",
})
# Legacy docker codes the spec says clients MAY encounter ("Legacy Docker support
# error codes"): accepted as well-formed from other registries (``legacy_codes``), but
# tests only expect them explicitly. Berth answers the spec's codes only (issue 10).
LEGACY_ERROR_CODES = frozenset({"TAG_INVALID", "MANIFEST_UNVERIFIED"})


def describe(resp: requests.Response) -> str:
    return (f"{resp.request.method} {resp.request.url} -> {resp.status_code} "
            f"headers={dict(resp.headers)} body={resp.content[:400]!r}")


def expect_status(resp: requests.Response, *statuses: int) -> None:
    assert resp.status_code in statuses, f"expected {statuses}: {describe(resp)}"


def error_codes(resp: requests.Response) -> list[str] | None:
    """Codes from a spec-shaped JSON error body, or None if the body is not JSON."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        return None
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], \
        f"JSON error body must be {{\"errors\": [...]}}: {describe(resp)}"
    codes = []
    for e in body["errors"]:
        assert isinstance(e, dict), describe(resp)
        code = e.get("code")
        assert isinstance(code, str) and ERROR_CODE_RE.match(code), \
            f"error code must be uppercase letters/underscores: {describe(resp)}"
        if "message" in e:
            assert isinstance(e["message"], str), f"message must be a string: {describe(resp)}"
        codes.append(code)
    return codes


def expect_error(resp: requests.Response, status: int | tuple[int, ...],
                 codes: str | tuple[str, ...] | None, *, json_required: bool = True,
                 legacy_codes: bool = True) -> list[str] | None:
    """Assert an error response.

    ``status``: allowed HTTP status(es). ``codes``: at least one error in the
    body must carry one of these codes (None: any well-formed code).

    With ``json_required`` (Berth, and any registry not known to be lenient) the
    body must be the spec's JSON error document served as application/json.
    Otherwise the spec's own rule applies: a 4xx body MAY be in any format, but
    if it is JSON it MUST have the spec's shape.

    With ``legacy_codes`` false (Berth) every code must be one of the spec's 14
    (so a ``codes`` tuple naming a legacy code accepts only its spec alternative);
    otherwise the legacy docker codes pass as well-formed too.
    """
    statuses = (status,) if isinstance(status, int) else tuple(status)
    expect_status(resp, *statuses)
    if resp.request.method == "HEAD":
        return None  # no body to inspect
    found = error_codes(resp)
    if found is None:
        assert not json_required, f"error body must be JSON: {describe(resp)}"
        return None
    if json_required:
        assert media_type_of(resp) == "application/json", \
            f"error Content-Type must be application/json: {describe(resp)}"
    allowed = SPEC_ERROR_CODES | (LEGACY_ERROR_CODES if legacy_codes else frozenset())
    for c in found:
        assert c in allowed, f"error code {c!r} is not in the spec's table: {describe(resp)}"
    if codes is not None:
        wanted = (codes,) if isinstance(codes, str) else tuple(codes)
        assert any(c in wanted for c in found), f"expected code in {wanted}: {describe(resp)}"
    return found


def expect_digest_header(resp: requests.Response, body: bytes | None = None,
                         equals: str | None = None) -> str:
    d = resp.headers.get("Docker-Content-Digest")
    assert d, f"missing Docker-Content-Digest: {describe(resp)}"
    if equals is not None:
        assert d == equals, f"Docker-Content-Digest {d} != {equals}: {describe(resp)}"
    if body is not None:
        assert verify_digest(body, d), f"Docker-Content-Digest {d} does not match body"
    return d


RANGE_HDR_RE = re.compile(r"^0-(\d+)$")


def upload_range_end(resp: requests.Response) -> int:
    """End offset from an upload ``Range: 0-<end>`` header (inclusive)."""
    rng = resp.headers.get("Range")
    assert rng is not None, f"missing Range header: {describe(resp)}"
    m = RANGE_HDR_RE.match(rng.strip())
    assert m, f"Range header must look like 0-<end>: {describe(resp)}"
    return int(m.group(1))
