"""The hostile-client suite: every attack found against Berth, and the ones that held, each as a
test, so none can come back. The tests start berth themselves (some with credentials, some on a
small disk, some under load), so they run only against Berth."""

import os

import pytest


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("the hostile-client tests start berth themselves")
