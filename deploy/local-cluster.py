#!/usr/bin/env python3
"""Three Berth nodes on PostgreSQL and Ceph radosgw (S3) behind HAProxy, on this machine, from
Debian's packages and without containers: the shape of deploy/compose.yaml, to try scale-out on
one machine. Ctrl-C stops everything.

    apt-get install -y postgresql haproxy radosgw ceph-mon ceph-osd     # or tests/install-deps.sh
    cargo build --release -p berth-server
    python3 deploy/local-cluster.py --port 5000
    AWS_SHARED_CREDENTIALS_FILE=<dir>/identity/credentials aws ecr create-repository \\
        --repository-name app --endpoint-url http://127.0.0.1:5000 --region us-east-1

The engines are throwaway (PostgreSQL without fsync, Ceph's OSD in memory, both under a fresh
/tmp directory), as the test suite uses them; for a lasting deployment point the nodes at your
own PostgreSQL and S3 (README, "Scale-out").
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "blackbox"))

from tools import engines  # noqa: E402
from tools.cluster import HAProxy  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=5000, help="the proxy's port on 127.0.0.1")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--berth", default=str(ROOT / "target" / "release" / "berth"))
    ap.add_argument("--dir", type=Path, help="working directory [a new one under /tmp]")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="berth-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    if not Path(args.berth).exists():
        print(f"no berth binary at {args.berth}: cargo build --release -p berth-server", file=sys.stderr)
        return 1

    stopping = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stopping.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))

    print("starting PostgreSQL and Ceph radosgw (about 20 s)...", flush=True)
    e = engines.start_engines(log=lambda m: print(m, flush=True))
    nodes: list[subprocess.Popen] = []
    proxy = None
    try:
        db = e.pg.create_database("berth")
        engines.ensure_bucket(e.s3.client(), "berth")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env.update({
            "BERTH_METADATA__URL": db,
            "BERTH_STORAGE__KIND": "s3",
            "BERTH_STORAGE__S3__BUCKET": "berth",
            "BERTH_STORAGE__S3__ENDPOINT": e.s3.endpoint,
            "BERTH_STORAGE__S3__PATH_STYLE": "true",
            "BERTH_STORAGE__S3__ACCESS_KEY_ID": e.s3.access_key,
            "BERTH_STORAGE__S3__SECRET_ACCESS_KEY": e.s3.secret_key,
            "BERTH_SERVER__PUBLIC_ADDRESS": f"127.0.0.1:{args.port}",
        })
        identity = work / "identity"
        servers = []
        for i in range(args.nodes):
            log = open(work / f"node{i + 1}.log", "ab")
            p = subprocess.Popen([args.berth, "serve", "--listen", "127.0.0.1:0", "--data", str(identity)],
                                 env=env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
            nodes.append(p)
            # The first node makes the shared identity files; the others wait for it.
            line = p.stdout.readline().strip()
            if not line.startswith("berth: listening on http://"):
                print(f"node {i + 1} did not start; see {work}/node{i + 1}.log", file=sys.stderr)
                return 1
            servers.append(line.rsplit("//", 1)[1])
        proxy = HAProxy(work, "127.0.0.1", args.port, servers, "http", work / "haproxy.log")
        proxy.start()
        print(f"\nBerth: http://127.0.0.1:{args.port} -> {', '.join(servers)}")
        print(f"administrator credentials: {identity / 'credentials'}")
        print(f"logs: {work}; Ctrl-C stops everything", flush=True)
        while not stopping["now"]:
            if any(p.poll() is not None for p in nodes):
                print("a node exited; stopping", file=sys.stderr)
                break
            time.sleep(0.5)
    finally:
        if proxy is not None:
            proxy.stop()
        for p in nodes:
            if p.poll() is None:
                p.terminate()
        for p in nodes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        e.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
