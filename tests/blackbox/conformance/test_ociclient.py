"""Offline tests of the client helpers themselves (no registry needed)."""

from conformance.ociclient import (EMPTY_DIGEST, EMPTY_JSON, NAME_RE, TAG_RE, add_query,
                                   digest_of, parse_link_next, resolve_location, unique_repo,
                                   verify_digest)

BASE = "http://127.0.0.1:5000/v2/foo/bar/blobs/uploads/"


def test_resolve_absolute_location():
    loc = "http://127.0.0.1:5000/v2/foo/bar/blobs/uploads/abc?_state=x%3D%3D"
    assert resolve_location(BASE, loc) == loc


def test_resolve_absolute_path_location():
    assert resolve_location(BASE, "/v2/foo/bar/blobs/uploads/abc?s=1") == \
        "http://127.0.0.1:5000/v2/foo/bar/blobs/uploads/abc?s=1"


def test_resolve_relative_path_location():
    assert resolve_location(BASE, "abc?s=1") == \
        "http://127.0.0.1:5000/v2/foo/bar/blobs/uploads/abc?s=1"


def test_add_query_preserves_existing_query():
    url = add_query("http://h/v2/r/blobs/uploads/u?_state=a%3D%3D&x=1", digest="sha256:ab")
    assert url == "http://h/v2/r/blobs/uploads/u?_state=a%3D%3D&x=1&digest=sha256%3Aab"
    assert add_query("http://h/p", digest="d") == "http://h/p?digest=d"
    assert add_query("http://h/p", n=None) == "http://h/p"


def test_parse_link_next():
    req = "http://127.0.0.1:5000/v2/r/tags/list?n=2"
    assert parse_link_next('</v2/r/tags/list?n=2&last=b>; rel="next"', req) == \
        "http://127.0.0.1:5000/v2/r/tags/list?n=2&last=b"
    assert parse_link_next("<http://127.0.0.1:5000/x?last=b>; rel=next", req) == \
        "http://127.0.0.1:5000/x?last=b"
    assert parse_link_next('</a>; rel="prev", </b>; rel="next"', req) == "http://127.0.0.1:5000/b"
    assert parse_link_next(None, req) is None
    assert parse_link_next('</a>; rel="prev"', req) is None


def test_digests():
    assert digest_of(EMPTY_JSON) == EMPTY_DIGEST
    assert digest_of(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    d512 = digest_of(b"abc", "sha512")
    assert d512.startswith("sha512:") and len(d512) == 7 + 128
    assert verify_digest(b"abc", d512) and not verify_digest(b"abd", d512)
    assert not verify_digest(b"abc", "nope:00")


def test_grammar_helpers():
    assert NAME_RE.match(unique_repo("conf", "Test_Foo[Bar-1]"))
    assert NAME_RE.match("team/app/api") and not NAME_RE.match("Team/app")
    assert not NAME_RE.match("a//b") and not NAME_RE.match("a/b/")
    assert TAG_RE.match("v1.0_rc-1") and TAG_RE.match("a" * 128)
    assert not TAG_RE.match("-bad") and not TAG_RE.match("a" * 129)
