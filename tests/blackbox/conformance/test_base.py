"""end-1: GET /v2/ (determining support)."""


def test_v2_base_returns_200(oci):
    r = oci.ping()
    assert r.status_code == 200, r.text


def test_v2_base_api_version_header(oci):
    # Legacy docker header; optional in the spec, but docker clients look at it
    # and both Berth and distribution send it.
    r = oci.ping()
    assert r.headers.get("Docker-Distribution-API-Version") == "registry/2.0"


def test_v2_base_head(oci):
    r = oci.head("/v2/")
    assert r.status_code == 200
