"""Attacks on the upload path and on the bytes at rest, each reproduced as an attacker (or a
failing disk) would, against the real binary:

* blob poisoning: a PATCH whose headers arrive first and whose body arrives after the session
  was completed, and two concurrent ECR UploadLayerPart calls, must never leave bytes under a
  digest they do not hash to; a later honest push of the digest must serve the honest bytes;
* two concurrent completions of one session: one 201, one 404 BLOB_UPLOAD_UNKNOWN;
* a flood of upload sessions from one principal: limited per principal and per account (429 /
  LimitExceededException), others unaffected, empty sessions expire soon;
* damaged bytes on disk (a flipped byte, a truncated file, a deleted file): never served, found
  by `berth admin verify`, repaired by a push;
* a full disk: a clear storage-full error, nothing acknowledged lost, recovery once space frees;
* create-on-push: the repository belongs to the pusher's account and needs ecr:CreateRepository.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import spawn_berth
from hostile.helpers import (ACCOUNT_B, TIMEOUT, World, admin, berth_binary, default_account, new_user,
                             oci_error, server_env, sha256)
from tools import rawhttp, store
from tools.berth import backend_env

ROUNDS = int(os.environ.get("BERTH_POISON_ROUNDS", "20"))
DOMAIN = "uploads.berth.test"  # server.registry_domain of the worlds with credentials


def blob_files_hash_to_names(data: Path) -> list[str]:
    """Stored blobs (files under the data dir, or a cluster's S3 objects) whose bytes do not
    hash to their name."""
    return store.blobs_not_hashing_to_names(data)


@pytest.fixture
def anon(tmp_path):
    env = {**os.environ, "BERTH_CREATE_ON_PUSH": "true"}
    proc = spawn_berth(tmp_path / "data", env=env)
    yield proc
    alive = proc.alive()
    proc.stop()
    assert alive, proc.log_tail()


def start(base: str, repo: str) -> str:
    r = requests.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=TIMEOUT)
    assert r.status_code == 202, (r.status_code, r.text)
    return rawhttp.absolute(base, r.headers["Location"])


def with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={digest}"


def chunked_push(base: str, repo: str, data: bytes) -> None:
    """POST, one PATCH, PUT ?digest=: the path that commits an upload file."""
    loc = start(base, repo)
    r = requests.patch(loc, data=data, timeout=TIMEOUT,
                       headers={"Content-Type": "application/octet-stream",
                                "Content-Range": f"0-{len(data) - 1}"})
    assert r.status_code == 202, (r.status_code, r.text)
    loc = rawhttp.absolute(base, r.headers["Location"])
    r = requests.put(with_digest(loc, sha256(data)), timeout=TIMEOUT)
    assert r.status_code == 201, (r.status_code, r.text)


def held_patch(location: str, length: int) -> socket.socket:
    """Sends a PATCH's request line and headers, promising ``length`` bytes, and nothing more."""
    u = urlparse(location)
    path = u.path + (f"?{u.query}" if u.query else "")
    s = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT)
    s.sendall((f"PATCH {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Range: 0-{length - 1}\r\nContent-Length: {length}\r\n\r\n").encode())
    return s


def read_status(s: socket.socket) -> int:
    buf = b""
    while b"\r\n" not in buf:
        got = s.recv(4096)
        if not got:
            break
        buf += got
    return int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/") else 0


def test_held_patch_cannot_plant_bytes_under_a_digest(anon):
    """The poisoning attack of issue 9, over /v2: B holds a PATCH, completes the session with
    good bytes, then sends the held body. Afterwards A pushes the same good bytes and must pull
    exactly them; no blob file may hold bytes other than its digest's."""
    base, repo = anon.url, "hostile/poison"
    rng = random.Random(7)
    planted = 0
    for _ in range(ROUNDS):
        good = rng.randbytes(256 * 1024)
        evil = rng.randbytes(len(good))
        loc = start(base, repo)
        held = held_patch(loc, len(evil))
        try:
            time.sleep(0.05)  # the server has the headers and waits for the body
            r = requests.patch(loc, data=good, timeout=TIMEOUT,
                               headers={"Content-Type": "application/octet-stream",
                                        "Content-Range": f"0-{len(good) - 1}"})
            # One request per session: the second is told where the session stands.
            assert r.status_code in (202, 416), (r.status_code, r.text)
            if r.status_code == 416:  # the spec's code for it, with the Range the session holds
                assert oci_error(r) == "BLOB_UPLOAD_INVALID", r.text
                assert re.fullmatch(r"0-\d+", r.headers.get("Range", "")), dict(r.headers)
            nxt = rawhttp.absolute(base, r.headers["Location"]) if r.status_code == 202 else loc
            done = requests.put(with_digest(nxt, sha256(good)), timeout=TIMEOUT)
            assert done.status_code in (201, 400, 404, 416), (done.status_code, done.text)
            held.sendall(evil)
            read_status(held)
        finally:
            held.close()
        # A, another account, pushes the same good bytes later and pulls them back.
        chunked_push(base, repo, good)
        got = requests.get(f"{base}/v2/{repo}/blobs/{sha256(good)}", timeout=TIMEOUT)
        assert got.status_code == 200, got.status_code
        if got.content != good:
            planted += 1
    assert planted == 0, f"{planted} of {ROUNDS} rounds served planted bytes"
    assert blob_files_hash_to_names(anon.data_dir) == []


def test_concurrent_completions_of_one_session(anon):
    """Two PUT ?digest= on one session at once: exactly one 201, the other 404
    BLOB_UPLOAD_UNKNOWN, never a 500."""
    base, repo = anon.url, "hostile/complete"
    rng = random.Random(11)
    for _ in range(10):
        data = rng.randbytes(2 * 1024 * 1024)
        loc = start(base, repo)
        r = requests.patch(loc, data=data, timeout=TIMEOUT, headers={"Content-Range": f"0-{len(data) - 1}"})
        assert r.status_code == 202
        url = with_digest(rawhttp.absolute(base, r.headers["Location"]), sha256(data))
        results: list[requests.Response] = []
        barrier = threading.Barrier(2)

        def complete() -> None:
            barrier.wait()
            results.append(requests.put(url, timeout=TIMEOUT))

        threads = [threading.Thread(target=complete) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 2)
        assert sorted(r.status_code for r in results) == [201, 404], [(r.status_code, r.text) for r in results]
        assert oci_error(next(r for r in results if r.status_code == 404)) == "BLOB_UPLOAD_UNKNOWN"
    assert blob_files_hash_to_names(anon.data_dir) == []


# ---------------------------------------------------------------------------------------------
# With credentials: ECR's layer API, session limits, create-on-push
# ---------------------------------------------------------------------------------------------


def secured(tmp_path, **settings) -> World:
    data = tmp_path / "data"
    account = default_account(data)
    admin(data, "create-account", "--name", "team-b", "--id", ACCOUNT_B)
    users = {
        "u1": new_user(data, "u1", account, ["AmazonEC2ContainerRegistryFullAccess"]),
        "u2": new_user(data, "u2", account, ["AmazonEC2ContainerRegistryFullAccess"]),
        "b1": new_user(data, "b1", ACCOUNT_B, ["AmazonEC2ContainerRegistryFullAccess"]),
    }
    env = server_env(DOMAIN)
    env.update({f"BERTH_{k.upper()}": str(v) for k, v in settings.items()})
    proc = spawn_berth(data, env=env, anonymous=False)
    return World(proc.url, data, account, proc, users, DOMAIN)


@pytest.fixture
def world(tmp_path, request):
    w = secured(tmp_path, **getattr(request, "param", {}))
    yield w
    alive = w.proc.alive()
    w.proc.stop()
    assert alive, w.proc.log_tail()


def test_concurrent_ecr_layer_parts_cannot_poison(world):
    """Two UploadLayerPart calls at byte 0 of one upload at once (good and evil bytes), then
    CompleteLayerUpload with the good digest: the stored blob is the good bytes or nothing."""
    ecr = world.ecr("u1")
    ecr.create_repository(repositoryName="hostile/ecr")
    token = world.token("u1")
    rng = random.Random(5)
    served_evil = 0
    for _ in range(15):
        good = rng.randbytes(512 * 1024)
        evil = rng.randbytes(len(good))
        up = ecr.initiate_layer_upload(repositoryName="hostile/ecr")["uploadId"]
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def part(data: bytes) -> None:
            client = world.ecr("u1")
            barrier.wait()
            try:
                client.upload_layer_part(repositoryName="hostile/ecr", uploadId=up, partFirstByte=0,
                                         partLastByte=len(data) - 1, layerPartBlob=data)
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["Error"]["Code"])

        threads = [threading.Thread(target=part, args=(d,)) for d in (good, evil)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 2)
        assert sorted(outcomes) == ["InvalidLayerPartException", "ok"], outcomes
        try:
            ecr.complete_layer_upload(repositoryName="hostile/ecr", uploadId=up, layerDigests=[sha256(good)])
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("InvalidLayerException", "LayerAlreadyExistsException"), e
        got = world.v2("GET", f"hostile/ecr/blobs/{sha256(good)}", token)
        if got.status_code == 200 and got.content != good:
            served_evil += 1
    assert served_evil == 0
    assert blob_files_hash_to_names(world.data) == []


@pytest.mark.embedded_only("upload-session limits are counted per node (README, uploads.sessions_per_*)")
@pytest.mark.parametrize("world", [{"upload_sessions_per_principal": 50, "upload_sessions_per_account": 80,
                                    "upload_empty_expiry_secs": 2}], indirect=True)
def test_session_flood_is_limited_per_principal_and_account(world):
    """u1 opens sessions without end: past 50 it gets 429 TOOMANYREQUESTS; u2 of the same account
    gets 30 more (the account's 80); b1 of another account is unaffected and pushes; the empty
    sessions go after their short expiry, and u1 may open sessions again."""
    for who in ("u1", "b1"):
        world.ecr(who).create_repository(repositoryName=f"flood/{who}")
    t1, t2, tb = world.token("u1"), world.token("u2"), world.token("b1")

    def post(token: str, repo: str) -> requests.Response:
        return world.v2("POST", f"{repo}/blobs/uploads/", token)

    codes = [post(t1, "flood/u1").status_code for _ in range(60)]
    assert codes == [202] * 50 + [429] * 10, codes
    r = post(t1, "flood/u1")
    assert oci_error(r) == "TOOMANYREQUESTS"
    with pytest.raises(ClientError) as e:
        world.ecr("u1").initiate_layer_upload(repositoryName="flood/u1")
    assert e.value.response["Error"]["Code"] == "LimitExceededException"
    codes = [post(t2, "flood/u1").status_code for _ in range(40)]
    assert codes == [202] * 30 + [429] * 10, codes
    # Another account pushes a whole chunked blob.
    blob = os.urandom(100_000)
    r = post(tb, "flood/b1")
    assert r.status_code == 202, r.text
    loc = rawhttp.absolute(world.url, r.headers["Location"])
    r = world.v2("PATCH", loc, tb, data=blob, headers={"Content-Range": f"0-{len(blob) - 1}"})
    assert r.status_code == 202, r.text
    r = world.v2("PUT", with_digest(rawhttp.absolute(world.url, r.headers["Location"]), sha256(blob)), tb)
    assert r.status_code == 201, r.text
    # Empty sessions expire after 2 s (swept every second).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if post(t1, "flood/u1").status_code == 202:
            break
        time.sleep(0.5)
    else:
        pytest.fail("empty sessions never expired")


CUSTOM_PUSH_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "ecr:GetAuthorizationToken", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchCheckLayerAvailability",
        "ecr:DescribeRepositories", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}],
}


@pytest.mark.parametrize("world", [{"create_on_push": "true"}], indirect=True)
def test_create_on_push_belongs_to_the_pusher_and_needs_create_repository(world, tmp_path):
    doc = tmp_path / "push-only.json"
    doc.write_text(json.dumps(CUSTOM_PUSH_ONLY))
    pusher = new_user(world.data, "pusher", ACCOUNT_B, [])
    admin(world.data, "attach-policy", "--user", "pusher", "--account", ACCOUNT_B, "--name", "push-only",
          "--document", str(doc))
    world.users["pusher"] = pusher
    time.sleep(5.5)  # the server sees identity changes made by berth admin within 5 s
    blob = os.urandom(2000)
    r = world.v2("POST", f"b/new-by-pusher/blobs/uploads/?digest={sha256(blob)}", world.token("pusher"), data=blob)
    assert r.status_code == 403 and oci_error(r) == "DENIED", (r.status_code, r.text)
    assert "ecr:CreateRepository" in r.text
    # b1 (account B, FullAccess) creates it by pushing: it is B's.
    r = world.v2("POST", f"b/new-by-b1/blobs/uploads/?digest={sha256(blob)}", world.token("b1"), data=blob)
    assert r.status_code == 201, (r.status_code, r.text)
    repo = world.ecr("b1").describe_repositories(repositoryNames=["b/new-by-b1"])["repositories"][0]
    assert repo["registryId"] == ACCOUNT_B
    assert f":{ACCOUNT_B}:repository/b/new-by-b1" in repo["repositoryArn"]


# ---------------------------------------------------------------------------------------------
# Bytes at rest
# ---------------------------------------------------------------------------------------------


def blob_path(data: Path, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return data / "blobs" / "sha256" / hexd[:2] / hexd


def verify(data: Path) -> tuple[int, dict]:
    r = subprocess.run([berth_binary(), "admin", "--data", str(data), "verify"], capture_output=True, text=True,
                       timeout=120, env=backend_env(data, server_env()))
    return r.returncode, json.loads(r.stdout)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_bytes_are_never_served_and_a_push_repairs_them(anon, damage):
    base, repo = anon.url, "hostile/rot"
    data = os.urandom(3 * 1024 * 1024 + 17)
    d = sha256(data)
    chunked_push(base, repo, data)
    at_rest, key = store.of(anon.data_dir), store.blob_key(d)  # a file, or a cluster's S3 object
    if damage == "flip":
        raw = bytearray(at_rest.read(key))
        raw[len(raw) // 2] ^= 0x55
        at_rest.write(key, bytes(raw))
        # Same size: only reading it back finds it. verify moves it aside and says so.
        code, report = verify(anon.data_dir)
        assert code == 1 and report["Damaged"] == [d], report
    elif damage == "truncate":
        at_rest.write(key, at_rest.read(key)[:1000])
    else:
        at_rest.delete(key)
    head = requests.head(f"{base}/v2/{repo}/blobs/{d}", timeout=TIMEOUT)
    assert head.status_code == 404, head.status_code
    get = requests.get(f"{base}/v2/{repo}/blobs/{d}", timeout=TIMEOUT)
    assert get.status_code == 404 and oci_error(get) == "BLOB_UNKNOWN", (get.status_code, get.text[:200])
    ranged = requests.get(f"{base}/v2/{repo}/blobs/{d}", headers={"Range": "bytes=0-99"}, timeout=TIMEOUT)
    assert ranged.status_code == 404, ranged.status_code
    if damage != "flip":
        code, report = verify(anon.data_dir)
        assert code == 1 and (report["Damaged"] + report["Missing"]) == [d], report
    # The client, told the blob is missing, pushes it again: repaired.
    chunked_push(base, repo, data)
    get = requests.get(f"{base}/v2/{repo}/blobs/{d}", timeout=TIMEOUT)
    assert get.status_code == 200 and get.content == data
    code, report = verify(anon.data_dir)
    assert code == 0 and report["Damaged"] == [] and report["Missing"] == [], report


@pytest.mark.embedded_only("fills a tmpfs under the data dir; a cluster's blobs are in S3")
def test_full_disk_answers_storage_full_and_recovers(tmp_path):
    """Berth on a 48 MiB tmpfs: pushes until the disk is full get a clear storage-full error
    (507, OCI shape), never a 500; every acknowledged blob stays intact; once space is freed,
    pushes work again."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        env = {**os.environ, "BERTH_CREATE_ON_PUSH": "true"}
        proc = spawn_berth(mnt / "data", env=env, log_path=tmp_path / "berth.log")
        try:
            base, repo = proc.url, "hostile/full"
            filler = mnt / "filler"
            acknowledged: dict[str, bytes] = {}
            full = None
            for i in range(40):
                data = os.urandom(4 * 1024 * 1024)
                loc = start(base, repo) if i % 2 else None
                if loc is None:
                    r = requests.post(f"{base}/v2/{repo}/blobs/uploads/?digest={sha256(data)}", data=data,
                                      timeout=TIMEOUT)
                else:
                    r = requests.patch(loc, data=data, timeout=TIMEOUT, headers={"Content-Range": f"0-{len(data) - 1}"})
                    if r.status_code == 202:
                        r = requests.put(with_digest(rawhttp.absolute(base, r.headers["Location"]), sha256(data)),
                                         timeout=TIMEOUT)
                assert r.status_code != 500, r.text
                if r.status_code == 201:
                    acknowledged[sha256(data)] = data
                    continue
                full = r
                break
            assert full is not None, "the disk never filled"
            assert full.status_code == 507, (full.status_code, full.text)
            body = full.json()["errors"][0]
            # The spec has no code for it: UNSUPPORTED (issue 10; UNKNOWN before), the message says it.
            assert body["code"] == "UNSUPPORTED" and "full" in body["message"], body
            assert acknowledged, "nothing fit on the disk"
            for d, data in acknowledged.items():
                got = requests.get(f"{base}/v2/{repo}/blobs/{d}", timeout=TIMEOUT)
                assert got.status_code == 200 and got.content == data, d
            # Free space: delete a blob file of our own making (the filler of a real admin).
            filler.write_bytes(b"")
            victim = next(iter(acknowledged))
            requests.delete(f"{base}/v2/{repo}/blobs/{victim}", timeout=TIMEOUT)
            blob_path(proc.data_dir, victim).unlink()
            del acknowledged[victim]
            data = os.urandom(1024 * 1024)
            r = requests.post(f"{base}/v2/{repo}/blobs/uploads/?digest={sha256(data)}", data=data, timeout=TIMEOUT)
            assert r.status_code == 201, (r.status_code, r.text)
            for d, data in acknowledged.items():
                got = requests.get(f"{base}/v2/{repo}/blobs/{d}", timeout=TIMEOUT)
                assert got.status_code == 200 and got.content == data, d
            assert proc.alive()
        finally:
            proc.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


def test_reading_an_invalid_tag_is_authorized_first(world):
    """The 404 for a manifest under a tag outside the grammar comes after authorization: another
    account's user, on the owner's registry host, is denied, as for any read, and learns
    nothing."""
    world.ecr("u1").create_repository(repositoryName="a/private")
    a_host = world.registry_host()
    path = "a/private/manifests/.INVALID_MANIFEST_NAME"
    r = world.v2("GET", path, world.token("b1"), host=a_host)
    assert r.status_code == 403 and oci_error(r) == "DENIED", (r.status_code, r.text)
    assert "ecr:BatchGetImage" in r.text and "INVALID_MANIFEST_NAME" not in r.text, r.text
    for host in (a_host, None):  # the owner, on its host and on the bare address (its own registry)
        r = world.v2("GET", path, world.token("u1"), host=host)
        assert r.status_code == 404 and oci_error(r) == "MANIFEST_UNKNOWN", (host, r.status_code, r.text)
    r = world.v2("GET", path, None, host=a_host)
    assert r.status_code == 401, r.status_code
