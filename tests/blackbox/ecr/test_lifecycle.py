"""Lifecycle policies with boto3 and `berth admin`: validation, preview, a run that expires
exactly what the preview showed, the scheduled worker, and lastRecordedPullTime.

Berth-only (it starts berth with administrator credentials of its own).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import spawn_berth
from ecr.oci import push_image as push, wait_for
from tools.berth import backend_env

KEY, SECRET = "AKIABERTHLIFECYCLE01", "berth-lifecycle-secret"


def start(tmp_path, **env_extra):
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET,
               BERTH_PULL_FLUSH_SECS="1", **env_extra)
    data = tmp_path / "data"
    return spawn_berth(data, env=env), data


def client(berth):
    return boto3.client("ecr", endpoint_url=berth.url, region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, config=Config(retries={"total_max_attempts": 1}))


def admin(data, *args) -> dict:
    binary = os.environ.get("BERTH_BIN") or str(
        __import__("pathlib").Path(__file__).resolve().parents[3] / "target" / "debug" / "berth")
    env = backend_env(data, {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")})
    r = subprocess.run([binary, "admin", "--data", str(data), *args], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def rule(priority, tag_status, count_type, number, **selection):
    sel = {"tagStatus": tag_status, "countType": count_type, "countNumber": number, **selection}
    if count_type != "imageCountMoreThan":
        sel["countUnit"] = "days"
    return {"rulePriority": priority, "selection": sel, "action": {"type": "expire"}}


def policy(*rules) -> str:
    # The model's minimum length is 100 characters; whitespace pads short documents.
    return json.dumps({"rules": list(rules)}).ljust(100)


def error(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


@pytest.mark.parametrize("text, reason", [
    ("{".ljust(100), "Lifecycle policy validation failure"),
    (json.dumps({"rules": []}).ljust(100), "Lifecycle policy validation failure"),
    (policy(rule(1, "tagged", "imageCountMoreThan", 1)), "tagPrefixList or tagPatternList"),
    (policy(rule(1, "any", "imageCountMoreThan", 1), rule(2, "untagged", "imageCountMoreThan", 1)),
     "lowest priority"),
    (policy(rule(1, "untagged", "imageCountMoreThan", 1), rule(2, "untagged", "imageCountMoreThan", 3)),
     "Only one rule can select Untagged images"),
    (policy(rule(1, "untagged", "imageCountMoreThan", 0)), "minimum: 1, found: 0"),
])
def test_invalid_lifecycle_policies_are_refused_with_a_reason(tmp_path, text, reason):
    berth, _ = start(tmp_path)
    try:
        ecr = client(berth)
        ecr.create_repository(repositoryName="lc/bad")
        code, message = error(ecr.put_lifecycle_policy, repositoryName="lc/bad", lifecyclePolicyText=text)
        assert code == "InvalidParameterException", message
        assert reason in message and "LifecyclePolicyText" in message, message
        assert error(ecr.get_lifecycle_policy, repositoryName="lc/bad")[0] == "LifecyclePolicyNotFoundException"
    finally:
        berth.stop()


def test_preview_shows_exactly_what_a_run_expires(tmp_path):
    berth, data = start(tmp_path)
    try:
        ecr = client(berth)
        repo = "lc/app"
        ecr.create_repository(repositoryName=repo)
        assert error(ecr.get_lifecycle_policy_preview, repositoryName=repo)[0] == \
            "LifecyclePolicyPreviewNotFoundException"
        pushed = {}
        for i, tags in enumerate([["prod-1"], ["prod-2"], ["prod-3", "stable"], ["dev-1"], [], [], ["prod-4"]]):
            pushed[push(berth.url, repo, tags, f"img{i}")] = tags
            time.sleep(0.01)  # distinct push times, in this order
        text = policy(
            rule(1, "tagged", "imageCountMoreThan", 2, tagPrefixList=["prod"]),
            rule(2, "untagged", "imageCountMoreThan", 1),
            rule(3, "any", "sinceImagePushed", 30))
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        assert ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"] == text

        started = ecr.start_lifecycle_policy_preview(repositoryName=repo)
        assert started["status"] in ("IN_PROGRESS", "COMPLETE")
        preview = ecr.get_lifecycle_policy_preview(repositoryName=repo)
        assert preview["status"] == "COMPLETE"
        planned = {r["imageDigest"]: r["appliedRulePriority"] for r in preview["previewResults"]}
        assert preview["summary"]["expiringImageTotalCount"] == len(planned)
        # The two oldest prod images go by rule 1, the older untagged one by rule 2.
        by_tags = {tuple(t): d for d, t in pushed.items() if t}
        untagged = [d for d, t in pushed.items() if not t]
        assert planned == {by_tags[("prod-1",)]: 1, by_tags[("prod-2",)]: 1, untagged[0]: 2}
        one_page = ecr.get_lifecycle_policy_preview(repositoryName=repo, maxResults=2)
        assert len(one_page["previewResults"]) == 2 and one_page["nextToken"]
        rest = ecr.get_lifecycle_policy_preview(repositoryName=repo, maxResults=2, nextToken=one_page["nextToken"])
        assert {r["imageDigest"] for r in one_page["previewResults"] + rest["previewResults"]} == set(planned)
        tagged_only = ecr.get_lifecycle_policy_preview(repositoryName=repo, filter={"tagStatus": "TAGGED"})
        assert {r["imageDigest"] for r in tagged_only["previewResults"]} == {by_tags[("prod-1",)], by_tags[("prod-2",)]}

        # A run on demand, from `berth admin` beside the running server.
        ran = admin(data, "lifecycle-run", "--repository", repo)
        assert {e["imageDigest"]: e["appliedRulePriority"] for e in ran["Expired"]} == planned
        left = {d["imageDigest"] for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}
        assert left == set(pushed) - set(planned)
        history = admin(data, "lifecycle-history", "--repository", repo)
        assert {e["imageDigest"] for e in history["Expired"]} == set(planned)
        assert ecr.get_lifecycle_policy(repositoryName=repo).get("lastEvaluatedAt")
        # Nothing more to expire: a second run is empty, and the preview says so too.
        assert admin(data, "lifecycle-run", "--repository", repo)["Expired"] == []
        ecr.start_lifecycle_policy_preview(repositoryName=repo)
        assert ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"] == []
        # A preview of a policy text that is not stored.
        other = policy(rule(1, "any", "imageCountMoreThan", 1))
        ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=other)
        assert len(ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]) == len(left) - 1

        deleted = ecr.delete_lifecycle_policy(repositoryName=repo)
        assert deleted["lifecyclePolicyText"] == text
        assert error(ecr.delete_lifecycle_policy, repositoryName=repo)[0] == "LifecyclePolicyNotFoundException"
        assert error(ecr.put_lifecycle_policy, repositoryName="lc/none", lifecyclePolicyText=text)[0] == \
            "RepositoryNotFoundException"
    finally:
        berth.stop()


def test_the_worker_applies_policies_on_its_schedule(tmp_path):
    berth, _ = start(tmp_path, BERTH_LIFECYCLE_INTERVAL_SECS="1")
    try:
        ecr = client(berth)
        repo = "lc/worker"
        ecr.create_repository(repositoryName=repo)
        old = push(berth.url, repo, [], "w1")
        time.sleep(0.01)
        new = push(berth.url, repo, [], "w2")
        ecr.put_lifecycle_policy(repositoryName=repo,
                                 lifecyclePolicyText=policy(rule(1, "untagged", "imageCountMoreThan", 1)))
        def left():
            return {d["imageDigest"] for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}

        assert wait_for(lambda: left() == {new}, seconds=30), f"the worker did not expire {old}"
    finally:
        berth.stop()


def test_pull_times_are_recorded(tmp_path):
    berth, _ = start(tmp_path)
    try:
        ecr = client(berth)
        repo = "lc/pulls"
        ecr.create_repository(repositoryName=repo)
        pulled = push(berth.url, repo, ["a"], "p1")
        never = push(berth.url, repo, ["b"], "p2")
        before = time.time()
        assert requests.get(f"{berth.url}/v2/{repo}/manifests/a", timeout=10).status_code == 200
        def details():
            return {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}

        assert wait_for(lambda: "lastRecordedPullTime" in details()[pulled])
        when = details()[pulled]["lastRecordedPullTime"].timestamp()
        assert before - 2 <= when <= time.time() + 2
        assert "lastRecordedPullTime" not in details()[never]
        # BatchGetImage is a pull too.
        ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "b"}])
        assert wait_for(lambda: "lastRecordedPullTime" in details()[never])
    finally:
        berth.stop()
