"""The ECR API tests start berth themselves (with credentials of their own), so they run only
against Berth."""

import os

import pytest


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("the ECR API tests start berth with credentials of their own")
