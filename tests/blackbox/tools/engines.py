"""Throwaway backing engines for the scale-out (cluster) runs of the black-box suite: a
PostgreSQL 15 server and a one-node Ceph cluster (mon + memstore OSD + radosgw, auth none) that
speaks S3. Each one lives under its own temporary directory, listens on free loopback ports,
and is gone after ``stop()``.

From Python::

    pg = start_postgres(); ceph = start_ceph()
    pg.create_database("berth_x"); s3_client(ceph.endpoint, ...).create_bucket(Bucket="b")
    ...; ceph.stop(); pg.stop()

From a shell (tests/cluster.sh does this), a supervisor that starts both, writes the
``BERTH_TEST_*`` variables the conftest reads to an env file (``export K=V`` lines), and stops
both on SIGTERM/SIGINT::

    python3 -m tools.engines serve --env-file /tmp/engines.env   # from tests/blackbox

Knobs (environment): ``BERTH_TEST_CEPH_MEMSTORE_BYTES`` (the OSD's in-memory device, default
6 GiB; objects live in RAM), ``BERTH_TEST_PG_MAX_CONNECTIONS`` (default 1000: every spawned
cluster holds 3 connection pools).

Every wait here is bounded; a failure raises ``EngineError`` with the tail of the engine's log.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PGBIN = Path(os.environ.get("BERTH_TEST_PGBIN", "/usr/lib/postgresql/15/bin"))
DEFAULT_MEMSTORE_BYTES = 6 * 1024 ** 3
S3_KEY = "BERTHTESTKEY"
S3_SECRET = "berthtestsecret"
S3_REGION = "us-east-1"


class EngineError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _terminate(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """Signal, wait up to ``grace`` seconds, then SIGKILL (and reap)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _wait_until(what: str, check, timeout: float, procs=(), log: Path | None = None,
                interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        for p in procs:
            if p.poll() is not None:
                raise EngineError(f"{what}: {p.args[0]} exited with {p.returncode}\n{_tail(log) if log else ''}")
        if time.monotonic() > deadline:
            raise EngineError(f"{what}: not within {timeout:.0f}s\n{_tail(log) if log else ''}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------


def _pg_user() -> dict:
    """Popen arguments that run a PostgreSQL binary as `postgres` when we are root (it refuses
    to run as root), as ourselves otherwise."""
    if os.geteuid() != 0:
        return {}
    import pwd  # noqa: PLC0415
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def psql(url: str, sql: str, timeout: float = 60) -> str:
    """Runs ``sql`` with psql against ``url``; returns stdout (unaligned, tuples only)."""
    binary = PGBIN / "psql" if (PGBIN / "psql").exists() else "psql"
    r = subprocess.run([str(binary), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    if r.returncode != 0:
        raise EngineError(f"psql {sql!r}: {r.stderr.strip()}")
    return r.stdout


def _check_ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


@dataclass
class PgServer:
    """A PostgreSQL server reached at ``url`` (``postgres://postgres@127.0.0.1:PORT``, no
    database), trust auth. Started here (``proc`` set) or given by the environment."""
    url: str
    proc: subprocess.Popen | None = None
    base: Path | None = None

    def db_url(self, name: str) -> str:
        return f"{self.url}/{_check_ident(name)}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE unless it exists; returns its URL."""
        _check_ident(name)
        if not psql(self.url + "/postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            try:
                psql(self.url + "/postgres", f'CREATE DATABASE "{name}"')
            except EngineError as e:
                if "already exists" not in str(e):
                    raise
        return self.db_url(name)

    def drop_database(self, name: str) -> None:
        psql(self.url + "/postgres", f'DROP DATABASE IF EXISTS "{_check_ident(name)}" WITH (FORCE)')

    def dump(self, name: str, timeout: float = 60) -> bytes:
        """pg_dump of one database, as plain SQL (what a reader of the database would see)."""
        binary = PGBIN / "pg_dump" if (PGBIN / "pg_dump").exists() else "pg_dump"
        r = subprocess.run([str(binary), "-d", self.db_url(name)], capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise EngineError(f"pg_dump {name}: {r.stderr.decode(errors='replace').strip()}")
        return r.stdout

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: no waiting for clients (nodes may still be up).
        _terminate(self.proc, signal.SIGINT, grace=20)
        self.proc = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


def start_postgres(timeout: float = 60, max_connections: int | None = None) -> PgServer:
    """initdb + postgres (fsync off) under a fresh /tmp dir, on a free loopback port."""
    t0 = time.monotonic()
    max_connections = max_connections or int(os.environ.get("BERTH_TEST_PG_MAX_CONNECTIONS", "1000"))
    base = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    as_pg = _pg_user()
    if as_pg:
        os.chown(base, as_pg["user"], as_pg["group"])
    data, log = base / "data", base / "server.log"
    try:
        r = subprocess.run([str(PGBIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                            "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **as_pg)
        if r.returncode != 0:
            raise EngineError(f"initdb: {r.stderr.strip()}")
        last = ""
        for _attempt in range(3):  # the probed port may be taken before postgres binds it
            port = free_port()
            with open(log, "ab") as fh:
                if as_pg:
                    os.chown(log, as_pg["user"], as_pg["group"])
                proc = subprocess.Popen(
                    [str(PGBIN / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1", "-p", str(port),
                     "-k", str(base), "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off", "-c", f"max_connections={max_connections}",
                     "-c", "shared_buffers=128MB", "-c", "log_min_messages=warning"],
                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **as_pg)
            srv = PgServer(f"postgres://postgres@127.0.0.1:{port}", proc, base)
            try:
                _wait_until("postgres accepting connections", lambda: _pg_ready(port), timeout - (time.monotonic() - t0),
                            procs=[proc], log=log)
                return srv
            except EngineError as e:
                last = str(e)
                _terminate(proc, signal.SIGQUIT, grace=5)
        raise EngineError(f"could not start postgres: {last}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _pg_ready(port: int) -> bool:
    if not _port_open(port):
        return False
    r = subprocess.run([str(PGBIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"],
                       capture_output=True, timeout=10)
    return r.returncode == 0


# ---------------------------------------------------------------------------------------------
# Ceph radosgw (S3)
# ---------------------------------------------------------------------------------------------


CEPH_CONF = """\
[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_cluster_mode = crc
ms_service_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 5
run_dir = {d}/run
admin_socket = {d}/run/$name.asok
log_file = {d}/log/$name.log
pid_file = {d}/run/$name.pid
keyring = {d}/keyring
mon_data = {d}/mon/ceph-$id
osd_data = {d}/osd/ceph-$id
osd_objectstore = memstore
memstore_device_bytes = {memstore_bytes}
ms_bind_ipv6 = false
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw_data = {d}/rgw
# Deleted objects' tails go to RGW's garbage collector, 2 hours later by default; memstore
# keeps them in RAM until then.
rgw_gc_obj_min_wait = 10
rgw_gc_processor_period = 10
"""


@dataclass
class S3Server:
    """An S3 endpoint with one user's keys. Started here (``procs`` set) or given."""
    endpoint: str
    access_key: str = S3_KEY
    secret_key: str = S3_SECRET
    region: str = S3_REGION
    procs: list = field(default_factory=list)
    base: Path | None = None

    def client(self):
        return s3_client(self.endpoint, self.access_key, self.secret_key, self.region)

    def stop(self) -> None:
        # radosgw first (it talks to the OSD), then the OSD, then the monitor.
        for p in reversed(self.procs):
            _terminate(p, signal.SIGTERM, grace=15)
        self.procs = []
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


def s3_client(endpoint: str, key: str, secret: str, region: str = S3_REGION):
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=120,
                 request_checksum_calculation="when_required", response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name=region, config=cfg)


def ensure_bucket(client, bucket: str) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def purge_bucket(client, bucket: str, delete: bool = True) -> int:
    """Deletes every object and open multipart upload in ``bucket`` (and, with ``delete``, the
    bucket); returns the number of objects removed. A missing bucket is not an error."""
    from botocore.exceptions import ClientError  # noqa: PLC0415
    n = 0
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for u in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                n += len(keys)
        if delete:
            client.delete_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    return n


def _ceph_cmd(conf: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([args[0], "-c", str(conf), *args[1:]], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start_ceph(timeout: float = 120, memstore_bytes: int | None = None, key: str = S3_KEY,
               secret: str = S3_SECRET) -> S3Server:
    """A one-node Ceph (mon, memstore OSD, radosgw; no mgr, auth none) under a fresh /tmp dir;
    the monitor and radosgw on free loopback ports (the OSD takes ports from Ceph's 6800-7300
    range). Takes about 15 s."""
    for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool", "ceph-authtool"):
        if not shutil.which(tool):
            raise EngineError(f"{tool} not found: apt-get install radosgw ceph-mon ceph-osd "
                              "(tests/install-deps.sh)")
    t0 = time.monotonic()
    memstore_bytes = memstore_bytes or int(os.environ.get("BERTH_TEST_CEPH_MEMSTORE_BYTES", DEFAULT_MEMSTORE_BYTES))
    d = Path(tempfile.mkdtemp(prefix="berth-ceph-"))
    srv = S3Server(endpoint="", access_key=key, secret_key=secret, base=d)

    def left() -> float:
        rest = timeout - (time.monotonic() - t0)
        if rest <= 0:
            raise EngineError(f"ceph did not come up within {timeout:.0f}s")
        return rest

    try:
        for sub in ("run", "log", "mon/ceph-a", "osd/ceph-0", "rgw"):
            (d / sub).mkdir(parents=True)
        fsid = str(uuid.uuid4())
        mon_port, rgw_port = free_port(), free_port()
        conf = d / "ceph.conf"
        conf.write_text(CEPH_CONF.format(fsid=fsid, mon_port=mon_port, rgw_port=rgw_port, d=d,
                                         memstore_bytes=memstore_bytes))
        logs = d / "log"

        def run(*args: str) -> str:
            r = _ceph_cmd(conf, *args, timeout=min(60, left()))
            if r.returncode != 0:
                raise EngineError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
            return r.stdout

        def daemon(name: str, *args: str) -> subprocess.Popen:
            with open(logs / f"{name}.out", "ab") as fh:
                p = subprocess.Popen([args[0], "-c", str(conf), "-f", *args[1:]], stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            srv.procs.append(p)
            return p

        subprocess.run(["ceph-authtool", "--create-keyring", str(d / "keyring"), "--gen-key", "-n", "mon.",
                        "--cap", "mon", "allow *"], check=True, capture_output=True, timeout=30)
        subprocess.run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v2:127.0.0.1:{mon_port}]",
                        str(d / "monmap")], check=True, capture_output=True, timeout=30)
        run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(d / "monmap"), "--keyring", str(d / "keyring"))
        mon = daemon("mon", "ceph-mon", "-i", "a")
        _wait_until("ceph-mon listening", lambda: _port_open(mon_port), left(), [mon], logs / "mon.a.log")
        osd_uuid = str(uuid.uuid4())
        run("ceph", "--connect-timeout", "30", "osd", "new", osd_uuid)
        run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        osd = daemon("osd", "ceph-osd", "-i", "0")

        def osd_up() -> bool:
            r = _ceph_cmd(conf, "ceph", "--connect-timeout", "10", "osd", "stat", timeout=20)
            return r.returncode == 0 and " 1 up" in r.stdout

        _wait_until("ceph-osd up", osd_up, left(), [mon, osd], logs / "osd.0.log", interval=0.3)
        rgw = daemon("rgw", "radosgw", "-n", "client.rgw.a")
        _wait_until("radosgw answering", lambda: _http_answers(rgw_port), left(), [mon, osd, rgw],
                    logs / "client.rgw.a.log", interval=0.3)
        run("radosgw-admin", "user", "create", "--uid=berth-test", "--display-name=berth test",
            f"--access-key={key}", f"--secret-key={secret}")
        srv.endpoint = f"http://127.0.0.1:{rgw_port}"
        # The user's keys work: a bucket round trip.
        c = srv.client()
        probe = f"probe-{uuid.uuid4().hex[:12]}"
        _wait_until("radosgw accepting the new user's keys", lambda: _try_bucket(c, probe), left(), [mon, osd, rgw],
                    logs / "client.rgw.a.log", interval=0.5)
        return srv
    except BaseException:
        srv.stop()
        raise


def _http_answers(port: int) -> bool:
    import http.client  # noqa: PLC0415
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/")
        c.getresponse().read()
        c.close()
        return True
    except (OSError, http.client.HTTPException):
        return False


def _try_bucket(client, bucket: str) -> bool:
    try:
        ensure_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)
        return True
    except Exception:  # noqa: BLE001 (keys not yet propagated; retried until the deadline)
        return False


# ---------------------------------------------------------------------------------------------
# Both, as the environment the conftest reads
# ---------------------------------------------------------------------------------------------


ENV_PG_URL = "BERTH_TEST_PG_URL"
ENV_S3_ENDPOINT = "BERTH_TEST_S3_ENDPOINT"
ENV_S3_KEY = "BERTH_TEST_S3_ACCESS_KEY_ID"
ENV_S3_SECRET = "BERTH_TEST_S3_SECRET_ACCESS_KEY"
ENV_S3_REGION = "BERTH_TEST_S3_REGION"


@dataclass
class Engines:
    pg: PgServer
    s3: S3Server
    owned: bool  # started here (stop() stops them) or given by the environment

    def env(self) -> dict[str, str]:
        return {ENV_PG_URL: self.pg.url, ENV_S3_ENDPOINT: self.s3.endpoint, ENV_S3_KEY: self.s3.access_key,
                ENV_S3_SECRET: self.s3.secret_key, ENV_S3_REGION: self.s3.region}

    def stop(self) -> None:
        if self.owned:
            errors = []
            for e in (self.s3, self.pg):
                try:
                    e.stop()
                except Exception as ex:  # noqa: BLE001 (stop the other one all the same)
                    errors.append(ex)
            if errors:
                raise errors[0]


def engines_from_env(env=None) -> Engines | None:
    """The engines named by ``BERTH_TEST_PG_URL`` and ``BERTH_TEST_S3_*``, or None if unset."""
    env = os.environ if env is None else env
    if not env.get(ENV_PG_URL) and not env.get(ENV_S3_ENDPOINT):
        return None
    missing = [k for k in (ENV_PG_URL, ENV_S3_ENDPOINT) if not env.get(k)]
    if missing:
        raise EngineError(f"{', '.join(missing)} unset while the other engine variable is set")
    return Engines(PgServer(env[ENV_PG_URL].rstrip("/")),
                   S3Server(env[ENV_S3_ENDPOINT].rstrip("/"), env.get(ENV_S3_KEY, S3_KEY),
                            env.get(ENV_S3_SECRET, S3_SECRET), env.get(ENV_S3_REGION, S3_REGION)),
                   owned=False)


def start_engines(log=print) -> Engines:
    t0 = time.monotonic()
    pg = start_postgres()
    t1 = time.monotonic()
    try:
        s3 = start_ceph()
    except BaseException:
        pg.stop()
        raise
    t2 = time.monotonic()
    log(f"engines up: postgres {pg.url} in {t1 - t0:.1f}s, ceph radosgw {s3.endpoint} in {t2 - t1:.1f}s")
    return Engines(pg, s3, owned=True)


def _serve(env_file: Path, pid_file: Path | None) -> int:
    """Start both, write the env file (and the engines' process ids, for a caller that has to
    SIGKILL us), wait for SIGTERM/SIGINT, stop both."""
    stop = {"now": False}

    def on_signal(_sig, _frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    engines = start_engines(log=lambda m: print(m, flush=True))
    try:
        if pid_file is not None:
            pids = [p.pid for p in engines.s3.procs] + ([engines.pg.proc.pid] if engines.pg.proc else [])
            pid_file.write_text("".join(f"{p}\n" for p in pids))
        tmp = env_file.with_name(env_file.name + ".tmp")
        tmp.write_text("".join(f"export {k}={v}\n" for k, v in engines.env().items()))
        tmp.rename(env_file)
        while not stop["now"]:
            time.sleep(0.2)
    finally:
        t0 = time.monotonic()
        engines.stop()
        print(f"engines stopped in {time.monotonic() - t0:.1f}s", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="start PostgreSQL and Ceph RGW, write the env file, stop them on SIGTERM")
    s.add_argument("--env-file", type=Path, required=True)
    s.add_argument("--pid-file", type=Path, help="where to write the engines' process ids")
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        return _serve(args.env_file, args.pid_file)
    return 2


if __name__ == "__main__":
    sys.exit(main())
