"""Content discovery: tags list (end-8a, end-8b) and the catalog.

Tags are chosen from [a-z0-9.-] only, so "lexical (case-insensitive)" and
"ASCIIbetical" order coincide and a plain sorted() is the expected order.

``/v2/_catalog`` is not part of the OCI spec; it is docker's registry API
(distribution's, with the same n/last/Link pagination as the tags list), which
Berth implements for docker-compatible tooling.
"""

from __future__ import annotations

import random

import pytest

from conformance.checks import describe, expect_status
from conformance.ociclient import parse_link_next, query_params, unique_repo

TAGS = ["v1.0", "latest", "0.9-rc1", "alpha", "beta-2", "v1.1", "z", "1.2.3"]

UNSORTED_REASON = (
    "distribution 2.8 (filesystem driver) lists tags in directory order; spec: "
    "'the tags MUST be in lexical order'")
NO_TAG_PAGINATION_REASON = (
    "distribution 2.8 ignores n and last on the tags list (returns every tag, no "
    "Link); spec: the response MUST include <int> results unless a Link header is "
    "provided, n=0 MUST return an empty list, last returns tags after <tagname>")


@pytest.fixture
def tagged(oci, repo):
    img = oci.push_image(repo)
    order = TAGS[:]
    random.Random(7).shuffle(order)
    for t in order:
        oci.push_manifest(repo, t, img.manifest, img.media_type)
    return sorted(TAGS)


def test_tags_list_contents(oci, repo, tagged):
    r = oci.tags_list(repo)
    expect_status(r, 200)
    doc = r.json()
    assert doc["name"] == repo
    assert sorted(doc["tags"]) == tagged
    assert len(doc["tags"]) == len(set(doc["tags"]))


@pytest.mark.deviation("distribution", reason=UNSORTED_REASON)
def test_tags_list_is_sorted(oci, repo, tagged):
    r = oci.tags_list(repo)
    expect_status(r, 200)
    assert r.json()["tags"] == tagged


@pytest.mark.deviation("distribution", reason=NO_TAG_PAGINATION_REASON)
def test_tags_pagination_with_link(oci, repo, tagged):
    first = oci.tags_list(repo, n=2)
    expect_status(first, 200)
    assert first.json()["tags"] == tagged[:2]
    nxt = parse_link_next(first.headers.get("Link"), first.url)
    assert nxt, f"expected a Link rel=next header: {describe(first)}"
    assert query_params(nxt).get("n") == "2", nxt

    tags, pages = oci.paginate(f"/v2/{repo}/tags/list?n=2", "tags")
    assert tags == tagged  # every tag exactly once, in order
    for p in pages:
        assert len(p.json()["tags"]) <= 2
        assert p.json()["name"] == repo
    assert len(pages) >= len(tagged) // 2


@pytest.mark.deviation("distribution", reason=NO_TAG_PAGINATION_REASON)
def test_tags_n_zero(oci, repo, tagged):
    r = oci.tags_list(repo, n=0)
    expect_status(r, 200)
    assert r.json()["tags"] == []
    assert "Link" not in r.headers, describe(r)


@pytest.mark.deviation("distribution", reason=NO_TAG_PAGINATION_REASON)
def test_tags_last(oci, repo, tagged):
    pivot = tagged[3]
    r = oci.tags_list(repo, last=pivot)
    expect_status(r, 200)
    assert r.json()["tags"] == tagged[4:]
    r = oci.tags_list(repo, n=2, last=pivot)
    expect_status(r, 200)
    assert r.json()["tags"] == tagged[4:6]


def test_tags_n_larger_than_count(oci, repo, tagged):
    r = oci.tags_list(repo, n=1000)
    expect_status(r, 200)
    assert sorted(r.json()["tags"]) == tagged
    assert parse_link_next(r.headers.get("Link"), r.url) is None


def test_tags_list_unknown_repository(oci, expect_error):
    expect_error(oci.tags_list(unique_repo("conf", "nosuchrepo")), 404, "NAME_UNKNOWN")


@pytest.mark.deviation("distribution", reason=(
    "distribution 2.8 answers 404 NAME_UNKNOWN for a repository that holds only "
    "untagged manifests; spec: for an existing repository the tags list MUST be "
    "200 and MAY be empty"))
def test_tags_list_repository_without_tags(oci, repo):
    """A repository that exists (a manifest pushed by digest) but has no tags."""
    oci.push_image(repo)
    r = oci.tags_list(repo)
    expect_status(r, 200)
    assert r.json()["name"] == repo
    assert r.json()["tags"] in ([], None)


# --------------------------------------------------------------------------
# Catalog (docker registry API)
# --------------------------------------------------------------------------


@pytest.fixture
def catalog_repos(oci):
    prefix = unique_repo("conf", "catalog")
    names = [f"{prefix}/{n}" for n in ("b", "a", "c/deep/er", "d")]
    for n in names:
        oci.push_image(n, "v1")
    return sorted(names)


def test_catalog_lists_repositories(oci, catalog_repos):
    r = oci.catalog()
    expect_status(r, 200)
    repos = r.json()["repositories"]
    if parse_link_next(r.headers.get("Link"), r.url):
        repos, _ = oci.paginate("/v2/_catalog", "repositories")
    assert set(catalog_repos) <= set(repos)
    assert repos == sorted(repos)
    assert len(repos) == len(set(repos))


def test_catalog_pagination(oci, catalog_repos):
    all_repos, pages = oci.paginate("/v2/_catalog?n=2", "repositories")
    assert set(catalog_repos) <= set(all_repos)
    assert all_repos == sorted(all_repos)
    assert len(all_repos) == len(set(all_repos)), "a repository appeared on two pages"
    for p in pages:
        assert len(p.json()["repositories"]) <= 2
    if len(all_repos) > 2:
        assert parse_link_next(pages[0].headers.get("Link"), pages[0].url), describe(pages[0])


def test_catalog_last(oci, catalog_repos):
    r = oci.catalog(n=2, last=catalog_repos[0])
    expect_status(r, 200)
    assert r.json()["repositories"] == catalog_repos[1:3]


def test_catalog_n_zero(oci, catalog_repos):
    r = oci.catalog(n=0)
    expect_status(r, 200)
    assert r.json()["repositories"] == []
