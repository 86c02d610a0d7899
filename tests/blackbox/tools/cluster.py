"""Scale-out runs of the black-box suite: ``BERTH_TEST_BACKEND=cluster``.

Then every ``spawn_berth(data_dir, ...)`` starts a *cluster*: three ``berth serve`` nodes that
share one PostgreSQL database and one S3 bucket (Ceph radosgw), and an HAProxy in front of them
that sends each request to the next node (round-robin per request, also on one keep-alive
connection). The returned :class:`ClusterProcess` has the interface of ``BerthProcess`` (``url``
is the proxy's) plus ``nodes``, the nodes' own ``BerthProcess`` with their direct URLs.

* The engines (PostgreSQL, Ceph) are started once per pytest session, on first use, unless
  ``BERTH_TEST_PG_URL`` and ``BERTH_TEST_S3_ENDPOINT`` (+ ``_ACCESS_KEY_ID``,
  ``_SECRET_ACCESS_KEY``, ``_REGION``) name running ones (tests/cluster.sh starts them so).
* Each data dir gets its own database and bucket, named from the data dir's path (and the
  session), so a cluster restarted on the same data dir (kill -9 tests) finds its data again.
  Both are created before the first node starts. ``cluster_env(data_dir)`` gives the
  ``BERTH_*`` variables that select them: the nodes get them, and ``berth admin --data DIR``
  needs them too (``tools.berth.backend_env``).
* All nodes get the same ``--data`` dir, which then holds only the node identity files
  (account-id, credentials, token.key). Node 1 starts first and makes them, then the others.
* All nodes append to one log file (``log_path``), as a log collector would show them.
* ``BERTH_SERVER__PUBLIC_ADDRESS`` is set to the proxy's address (unless the test sets it),
  so ``repositoryUri`` and ``proxyEndpoint`` name the address clients use.
* Nodes speaking TLS (``--tls-cert``) are proxied in TCP mode (TLS passes through, one node per
  connection); plain HTTP in HTTP mode (one node per request).

Knobs: ``BERTH_TEST_CLUSTER_NODES`` (default 3); ``BERTH_TEST_CLUSTER_STORE=embedded`` gives the
nodes no engine settings, so they use the data dir's SQLite and files: only meaningful with one
node, it checks the harness (proxy, process handling) against a server without scale-out
support.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tools import engines as E

BACKEND_ENV = "BERTH_TEST_BACKEND"
# One per pytest process: names of databases and buckets are unique per session, so engines
# reused across sessions (tests/cluster.sh runs one session, a developer may run several against
# the same engines) never hand a new data dir the data of an old one at the same path.
SESSION = uuid.uuid4().hex[:6]


def backend() -> str:
    b = os.environ.get(BACKEND_ENV, "embedded").strip().lower() or "embedded"
    if b not in ("embedded", "cluster"):
        raise RuntimeError(f"{BACKEND_ENV}={b!r}: must be embedded or cluster")
    return b


def is_cluster() -> bool:
    return backend() == "cluster"


def node_count() -> int:
    return max(1, int(os.environ.get("BERTH_TEST_CLUSTER_NODES", "3")))


def uses_engines() -> bool:
    store = os.environ.get("BERTH_TEST_CLUSTER_STORE", "engines").strip().lower()
    if store not in ("engines", "embedded"):
        raise RuntimeError(f"BERTH_TEST_CLUSTER_STORE={store!r}: must be engines or embedded")
    return store == "engines"


# ---------------------------------------------------------------------------------------------
# Engines: one set per session
# ---------------------------------------------------------------------------------------------

_engines: E.Engines | None = None
_engines_lock = threading.Lock()
# data dir key -> (database, bucket) made this session
_resources: dict[str, tuple[str, str]] = {}


def engines() -> E.Engines:
    """The session's engines: those named by the environment, else started now (once)."""
    global _engines
    with _engines_lock:
        if _engines is None:
            given = E.engines_from_env()
            if given is not None:
                _engines = given
            else:
                _engines = E.start_engines(log=lambda m: print(f"\n{m}", flush=True))
                atexit.register(stop_engines)
        return _engines


def stop_engines() -> None:
    """Stops the engines if this session started them (no-op otherwise, and when none)."""
    global _engines
    with _engines_lock:
        e, _engines = _engines, None
    if e is not None:
        e.stop()


def _key(data_dir) -> str:
    return str(Path(os.path.abspath(data_dir)).resolve())


def names_for(data_dir) -> tuple[str, str]:
    """(database, bucket) of a data dir: stable for the path within this session."""
    h = hashlib.sha256(_key(data_dir).encode()).hexdigest()[:16]
    return f"berth_{SESSION}_{h}", f"berth-{SESSION}-{h}"


def s3_client():
    s3 = engines().s3
    return s3.client()


def cluster_env(data_dir) -> dict[str, str]:
    """The ``BERTH_*`` settings that put a node (or ``berth admin``) of ``data_dir`` on its
    database and bucket, both created if missing. Empty with ``BERTH_TEST_CLUSTER_STORE=embedded``."""
    if not uses_engines():
        return {}
    e = engines()
    db, bucket = names_for(data_dir)
    key = _key(data_dir)
    if key not in _resources:
        e.pg.create_database(db)
        E.ensure_bucket(e.s3.client(), bucket)
        _resources[key] = (db, bucket)
    return {
        "BERTH_METADATA__URL": e.pg.db_url(db),
        "BERTH_STORAGE__KIND": "s3",
        "BERTH_STORAGE__S3__BUCKET": bucket,
        "BERTH_STORAGE__S3__ENDPOINT": e.s3.endpoint,
        "BERTH_STORAGE__S3__REGION": e.s3.region,
        "BERTH_STORAGE__S3__PATH_STYLE": "true",
        "BERTH_STORAGE__S3__ACCESS_KEY_ID": e.s3.access_key,
        "BERTH_STORAGE__S3__SECRET_ACCESS_KEY": e.s3.secret_key,
    }


def node_env(data_dir, env: dict | None) -> dict[str, str]:
    """A node's environment: the test's (or ours), without the harness's own ``BERTH_TEST_*``
    variables, plus the cluster's settings, which win."""
    base = dict(os.environ if env is None else env)
    base = {k: v for k, v in base.items() if not k.startswith("BERTH_TEST_")}
    base.update(cluster_env(data_dir))
    return base


def resources_in_use() -> set[str]:
    return set(_resources)


def release(keys) -> None:
    """Drops the databases and empties and deletes the buckets of these data dirs (made this
    session, no cluster of them running): memstore keeps every object in RAM."""
    if _engines is None:
        return
    live = {_key(c.data_dir) for c in list(_live_clusters) if c.alive_any()}
    client = None
    for key in keys:
        if key in live or key not in _resources:
            continue
        db, bucket = _resources.pop(key)
        try:
            client = client or _engines.s3.client()
            E.purge_bucket(client, bucket)
            _engines.pg.drop_database(db)
        except Exception as e:  # noqa: BLE001 (a leak, not a test failure)
            print(f"\ncould not release {db} / {bucket}: {e}")


# ---------------------------------------------------------------------------------------------
# HAProxy
# ---------------------------------------------------------------------------------------------

HAPROXY_GLOBAL = """\
global
  # Request heads up to ~120 KiB reach the nodes, so their own limits (431) are what clients see.
  tune.bufsize 131072
  tune.maxrewrite 1024
  # No maxconn: haproxy derives it from the open-files limit it is given.
  log stderr format short local0 warning
"""

HAPROXY_HTTP = """\
defaults
  mode http
  log global
  timeout connect 5s
  # Streaming pushes and pulls of big layers, and tests that hold requests: generous.
  timeout client 300s
  timeout server 300s
  timeout http-request 300s
  timeout http-keep-alive 300s
  # A client retry is the client's job: a request that failed on a node is not sent to another.
  retries 0
  retry-on none
  # Every request goes to the next node, on a new server connection (never a pooled one).
  option http-server-close
  # Forward what clients send, odd as it may be: the nodes decide what is valid.
  option accept-invalid-http-request
"""

HAPROXY_TCP = """\
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  retries 0
"""


def _bind_host(listen: str) -> str:
    host = listen.rsplit(":", 1)[0]
    return host  # "127.0.0.1" or "[::1]"


class HAProxy:
    """``haproxy`` in the foreground, round-robin over ``servers`` (host:port)."""

    def __init__(self, workdir: Path, bind_host: str, port: int, servers: list[str], mode: str,
                 log_path: Path):
        self.workdir, self.bind_host, self.port, self.servers, self.mode = workdir, bind_host, port, servers, mode
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        lines = [HAPROXY_GLOBAL, HAPROXY_HTTP if self.mode == "http" else HAPROXY_TCP,
                 "frontend fe", f"  bind {self.bind_host}:{self.port}", "  default_backend nodes",
                 "backend nodes", "  balance roundrobin"]
        lines += [f"  server n{i + 1} {s}" for i, s in enumerate(self.servers)]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> None:
        binary = os.environ.get("BERTH_TEST_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("haproxy not found: apt-get install haproxy (tests/install-deps.sh)")
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(self.config())
        with open(self.log_path, "ab") as fh:
            self.proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=fh, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        host = self.bind_host.strip("[]")
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{_tail(self.log_path)}")
            try:
                with socket.create_connection((host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"haproxy not listening on {self.port} within {timeout}s:\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------

_live_clusters: "set[ClusterProcess]" = set()


class _ClusterPopen:
    """What tests read of ``BerthProcess.proc`` (``poll()``, ``returncode``, ``pid``,
    ``wait()``), over all nodes: it has exited once any node has; its code is the first
    non-zero code of the nodes (0 if all exited 0)."""

    def __init__(self, cluster: "ClusterProcess"):
        self._c = cluster

    @property
    def pid(self) -> int:
        return self._c.nodes[0].proc.pid

    @property
    def args(self):
        return self._c.nodes[0].proc.args

    def _code(self, codes):
        done = [c for c in codes if c is not None]
        if not done:
            return None
        return next((c for c in done if c != 0), 0)

    def poll(self):
        return self._code([n.proc.poll() for n in self._c.nodes])

    @property
    def returncode(self):
        return self._code([n.proc.returncode for n in self._c.nodes])

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        for n in self._c.nodes:
            n.proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.returncode

    def kill(self):
        for n in self._c.nodes:
            if n.proc.poll() is None:
                n.proc.kill()

    def send_signal(self, sig):
        for n in self._c.nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


class ClusterProcess:
    """A running cluster: ``nodes`` (``BerthProcess``, direct URLs) behind one proxy (``url``)."""

    def __init__(self, nodes, proxy: HAProxy, url: str, data_dir: Path, log_path: Path, workdir: Path):
        self.nodes = nodes
        self.proxy = proxy
        self.url = url
        self.data_dir = data_dir
        self.log_path = log_path
        self.workdir = workdir
        self.proc = _ClusterPopen(self)
        self._direct: int | None = None  # set on a view made by direct()
        self.database, self.bucket = names_for(data_dir) if uses_engines() else (None, None)
        _live_clusters.add(self)

    @property
    def stdout_lines(self):
        return self.nodes[0].stdout_lines

    @property
    def pid(self) -> int:
        """Node 1's (or, on a ``direct(i)`` view, node i's) process id."""
        return self.nodes[self._direct or 0].pid

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes]

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes) and self.proxy.alive()

    def alive_any(self) -> bool:
        return any(n.alive() for n in self.nodes)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM to every node at once, then wait (SIGKILL after ``grace``); then the proxy.
        The first non-zero exit code of the nodes, else 0."""
        try:
            for n in self.nodes:  # all at once, one signal each
                if n.proc.poll() is None:
                    n.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            codes = []
            for n in self.nodes:
                try:
                    codes.append(n.proc.wait(timeout=max(0.0, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    codes.append(n.proc.wait(timeout=10))
        finally:
            self._done()
        return next((c for c in codes if c != 0), 0)

    def kill9(self) -> int | None:
        """Crash every node at once (SIGKILL), then stop the proxy."""
        try:
            for n in self.nodes:
                if n.proc.poll() is None:
                    n.proc.kill()
            codes = [n.kill9() for n in self.nodes]
        finally:
            self._done()
        return codes[0]

    def _done(self) -> None:
        self.proxy.stop()
        _live_clusters.discard(self)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        return _tail(self.log_path, n)

    def direct(self, i: int = 0) -> "ClusterProcess":
        """The same cluster seen through node ``i``'s own address (``url``, ``pid``): for tests
        of one server's transport (timeouts, connection caps), which a proxy would answer
        itself. Stopping it stops the whole cluster."""
        view = copy.copy(self)  # shares the nodes and the proxy
        view.url = self.nodes[i].url
        view._direct = i
        return view

    def __repr__(self) -> str:
        return f"ClusterProcess(url={self.url!r}, nodes={[n.url for n in self.nodes]!r})"


def spawn_cluster(spawn_node, data_dir, extra_args=(), *, bin_path=None, timeout: float = 20.0,
                  log_path=None, env=None, anonymous: bool = True, listen: str = "127.0.0.1:0") -> ClusterProcess:
    """Starts ``node_count()`` nodes with ``spawn_node`` (conftest's single-node spawn) on the
    same data dir, node 1 first, and a proxy in front; see the module doc."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if log_path is None:
        log_path = data_dir.parent / f"berth-{data_dir.name}-{int(time.time() * 1000)}.log"
    log_path = Path(log_path)
    nenv = node_env(data_dir, env)
    extra_args = list(extra_args)
    tls = "--tls-cert" in extra_args or bool(nenv.get("BERTH_SERVER__TLS__CERT") or nenv.get("BERTH_TLS_CERT"))
    bind_host = _bind_host(listen)
    # The proxy's port is picked now (the nodes must know it) and held until haproxy has it.
    reservation = _reserve_port(bind_host.strip("[]"))
    proxy_port = reservation.getsockname()[1]
    public = f"{bind_host}:{proxy_port}"
    if not any(k in nenv for k in ("BERTH_SERVER__PUBLIC_ADDRESS", "BERTH_PUBLIC_ADDRESS")):
        nenv["BERTH_SERVER__PUBLIC_ADDRESS"] = public
    workdir = Path(tempfile.mkdtemp(prefix="berth-proxy-"))
    nodes = []
    proxy = None
    try:
        for _ in range(node_count()):
            nodes.append(spawn_node(data_dir, extra_args, bin_path=bin_path, timeout=timeout, log_path=log_path,
                                    env=nenv, anonymous=anonymous, listen=listen))
        scheme = nodes[0].url.split("://", 1)[0]
        servers = [n.url.split("://", 1)[1] for n in nodes]
        proxy = HAProxy(workdir, bind_host, proxy_port, servers, "tcp" if tls or scheme == "https" else "http",
                        workdir / "haproxy.log")
        proxy.start()
        reservation.close()
        return ClusterProcess(nodes, proxy, f"{scheme}://{public}", data_dir, log_path, workdir)
    except BaseException:
        reservation.close()
        for n in nodes:
            n.kill9()
        if proxy is not None:
            proxy.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _reserve_port(host: str) -> socket.socket:
    """A socket bound (not listening) to a free port of ``host`` with SO_REUSEPORT: no other
    bind(0) or outgoing connection takes the port, and haproxy (which sets SO_REUSEPORT on its
    listeners) can still bind it."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    return s
