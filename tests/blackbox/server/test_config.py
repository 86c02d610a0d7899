"""The configuration tree and the background workers, through the real binary: nested keys in
the file and the environment (`__`), secrets from `_FILE` that never reach the log, the flat
keys of earlier releases still honoured with a warning naming the new key, bad values refused at
start by name, and `berth admin workers` showing each worker's state while the server runs and
after it stopped.

Berth-only (it starts its own servers); skipped for other targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import pytest
import requests

from conftest import spawn_berth
from tools.berth import backend_env

BERTH_BIN = Path(os.environ.get("BERTH_BIN") or Path(__file__).resolve().parents[3] / "target" / "debug" / "berth")
KEY = "AKIACONFIGTEST000001"
SECRET = "config-test-secret-never-logged-0123456789"


@pytest.fixture(autouse=True)
def _berth_only(request):
    if (request.config.getoption("--target") or "berth") != "berth" or os.environ.get("REGISTRY_URL"):
        pytest.skip("configuration tests start berth themselves")


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_") or k == "BERTH_BIN"}
    env.update(extra)
    return env


def admin(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BERTH_BIN), "admin", "--data", str(data), *args], capture_output=True, text=True,
                          timeout=60, env=backend_env(data, clean_env()))


def test_nested_keys_file_secrets_and_workers(tmp_path):
    secret_file = tmp_path / "admin-secret"
    secret_file.write_text(SECRET + "\n")
    cfg = tmp_path / "berth.toml"
    cfg.write_text('[registry]\nmax_manifest_bytes = 64\n[gc]\ninterval_secs = 1\n[pulls]\nflush_interval_secs = 1\n')
    env = clean_env(BERTH_AUTH__ADMIN_ACCESS_KEY_ID=KEY, BERTH_AUTH__ADMIN_SECRET_ACCESS_KEY_FILE=str(secret_file),
                    BERTH_REGISTRY__CREATE_ON_PUSH="true", BERTH_SERVER__REGISTRY_DOMAIN="registry.localhost")
    data = tmp_path / "data"
    p = spawn_berth(data, ["--config", str(cfg)], env=env, anonymous=True)
    try:
        ecr = boto3.client("ecr", endpoint_url=p.url, region_name="us-east-1", aws_access_key_id=KEY,
                           aws_secret_access_key=SECRET)
        assert ecr.describe_repositories()["repositories"] == []  # the secret read from the file
        # [registry] max_manifest_bytes from the file, create_on_push from the environment.
        r = requests.put(f"{p.url}/v2/cfg/app/manifests/v1", data=b"{" + b" " * 100 + b"}", timeout=10,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code in (400, 413), r.text
        assert not (data / "credentials").exists(), "the configured administrator, no generated one"

        deadline = time.monotonic() + 20
        while True:
            r = admin(data, "workers")
            # The status file is written within a second of start.
            status = json.loads(r.stdout) if r.returncode == 0 else {"Workers": []}
            workers = {w["name"]: w for w in status["Workers"]}
            if workers.get("gc", {}).get("runs", 0) >= 2 and workers["pull-flush"]["runs"] >= 1:
                break
            assert time.monotonic() < deadline, (r.stderr, status)
            time.sleep(0.3)
        assert status["ServerRunning"] is True
        assert set(workers) >= {"gc", "upload-sweep", "pull-flush", "lifecycle", "scrub"}
        gc = workers["gc"]
        assert gc["state"] in ("idle", "running") and gc["errors"] == 0
        assert gc["lastOutcome"].startswith("ok") and gc["lastRunAtMs"] > 0
        assert workers["lifecycle"]["runs"] == 0 and workers["lifecycle"]["state"] == "idle"
    finally:
        assert p.stop() == 0
    status = json.loads(admin(data, "workers").stdout)
    assert status["ServerRunning"] is False
    assert {w["state"] for w in status["Workers"]} == {"stopped"}
    log = p.log_path.read_text()
    assert SECRET not in log, "a secret must never be logged"
    assert "[redacted]" in log and "registry.localhost" in log
    assert "deprecated" not in log


def test_flat_keys_of_earlier_releases_still_work_with_a_warning(tmp_path):
    cfg = tmp_path / "berth.toml"
    cfg.write_text("max_manifest_bytes = 64\n")
    env = clean_env(BERTH_CREATE_ON_PUSH="false", BERTH_GC_GRACE_SECS="5", BERTH_BIN="/not/a/key")
    p = spawn_berth(tmp_path / "data", ["--config", str(cfg)], env=env)
    try:
        r = requests.post(f"{p.url}/v2/no/such/blobs/uploads/", timeout=10)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"  # create_on_push false
    finally:
        assert p.stop() == 0
    log = p.log_path.read_text()
    assert "BERTH_GC_GRACE_SECS is deprecated: use BERTH_GC__GRACE_SECS (gc.grace_secs)" in log
    assert "BERTH_CREATE_ON_PUSH is deprecated: use BERTH_REGISTRY__CREATE_ON_PUSH" in log
    assert "max_manifest_bytes (in " in log and "use registry.max_manifest_bytes" in log
    assert "BERTH_BIN names no configuration key" in log


@pytest.mark.parametrize("toml, env, needle", [
    ("[server]\nlisten_on = \"127.0.0.1:0\"\n", {}, "listen_on"),
    ("[storage]\nkind = \"s3\"\n", {}, "s3"),
    ("", {"BERTH_GC__GRACE": "1"}, "BERTH_GC__GRACE"),
    ("", {"BERTH_SERVER__REGISTRY_DOMAIN": "Registry.Example.com:5000"}, "server.registry_domain"),
    ("", {"BERTH_AUTH__DEFAULT_ACCOUNT": "12345"}, "auth.default_account"),
    ("", {"BERTH_AUTH__ADMIN_ACCESS_KEY_ID": "AKIAONLY"}, "auth.admin_secret_access_key"),
    ("", {"BERTH_METADATA__URL": "mysql://db/berth"}, "metadata.url"),
    # A database that is not there: one line naming the key and what is wrong.
    ("", {"BERTH_METADATA__URL": "postgres://berth@127.0.0.1:1/berth"}, "metadata.url: PostgreSQL at 127.0.0.1:1 is unreachable"),
    ("gc_grace_secs = 1\n[gc]\ngrace_secs = 2\n", {}, "gc.grace_secs"),
])
def test_bad_configuration_is_refused_at_start_by_name(tmp_path, toml, env, needle):
    cfg = tmp_path / "berth.toml"
    cfg.write_text(toml)
    r = subprocess.run([str(BERTH_BIN), "serve", "--listen", "127.0.0.1:0", "--data", str(tmp_path / "d"),
                        "--config", str(cfg)], capture_output=True, text=True, timeout=30, env=clean_env(**env))
    assert r.returncode != 0, r.stdout
    assert needle in r.stderr, r.stderr
    assert "listening" not in r.stdout
