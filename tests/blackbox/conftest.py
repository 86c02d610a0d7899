"""Shared fixtures for Berth's black-box tests.

Which registry is under test (``registry`` fixture, session scope):

* ``--target=url``, or env ``REGISTRY_URL`` set and no ``--target``: the URL is
  used as is (kind "external"). Env ``REGISTRY_IMPL`` (berth|distribution|other,
  default other) says what is behind it, which selects the expectations:
  Berth-only strictness and the documented distribution xfails.
* ``--target=distribution``, or env ``WITH_DISTRIBUTION=1`` and no ``--target``:
  a CNCF distribution server (``docker-registry``, env ``DISTRIBUTION_BIN``) is
  started on a free loopback port with a temporary filesystem root.
* otherwise (``--target=berth``, the default): Berth is spawned from
  ``$BERTH_BIN`` (default ``<repo>/target/debug/berth``) with
  ``serve --listen 127.0.0.1:0 --data <tmpdir> --anonymous``.

``spawn_berth`` / ``BerthProcess`` are importable helpers for tests that need
to start, kill -9 and restart Berth on the same data dir::

    from conftest import spawn_berth
    p = spawn_berth(data_dir); ...; p.kill9(); p = spawn_berth(data_dir)

Backend (env ``BERTH_TEST_BACKEND``): ``embedded`` (default) runs one ``berth serve`` on the data
dir's SQLite and files. ``cluster`` makes every ``spawn_berth`` (and so the ``registry``
fixture) start three nodes on PostgreSQL + S3 (Ceph radosgw) behind a round-robin HAProxy;
see ``tools/cluster.py``. Tests that cannot apply to a cluster carry
``@pytest.mark.embedded_only(reason)`` and are skipped there.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

# The distribution-spec suite, the client tests and the crash tests push to repositories that do
# not exist yet, as any OCI registry allows. Berth follows ECR by default (a push to a missing
# repository is NAME_UNKNOWN); the ECR tests check that rule with this variable set to false.
os.environ.setdefault("BERTH_CREATE_ON_PUSH", "true")

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_BERTH_BIN = REPO_ROOT / "target" / "debug" / "berth"
READY_RE = re.compile(r"^berth: listening on (https?://\S+)\s*$")

TARGETS = ("berth", "distribution", "url")


# --------------------------------------------------------------------------
# Process helpers (importable)
# --------------------------------------------------------------------------


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "<no log>"
    return "\n".join(lines[-n:])


def _stop_process(proc: subprocess.Popen, grace: float = 10.0) -> int | None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
    return proc.returncode


class BerthProcess:
    """A running ``berth serve``. ``url`` is its base URL (no trailing slash)."""

    def __init__(self, proc: subprocess.Popen, url: str, data_dir: Path, log_path: Path,
                 stdout_lines: "queue.Queue[str]"):
        self.proc = proc
        self.url = url
        self.data_dir = data_dir
        self.log_path = log_path
        self.stdout_lines = stdout_lines

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> int | None:
        """Graceful shutdown: SIGTERM, then SIGKILL after ``grace`` seconds."""
        return _stop_process(self.proc, grace)

    def kill9(self) -> int | None:
        """Crash it: SIGKILL, no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        return self.proc.returncode

    def log_tail(self, n: int = 40) -> str:
        return _tail(self.log_path, n)

    def __repr__(self) -> str:
        return f"BerthProcess(pid={self.proc.pid}, url={self.url!r})"


def spawn_berth(data_dir, extra_args=(), *, bin_path=None, timeout: float = 20.0,
                log_path=None, env=None, anonymous: bool = True,
                listen: str = "127.0.0.1:0"):
    """Start Berth on ``data_dir``: one ``berth serve`` (``spawn_berth_node``), or with
    ``BERTH_TEST_BACKEND=cluster`` a cluster of nodes behind a proxy, returned as a
    ``tools.cluster.ClusterProcess`` with the same interface (``url`` is the proxy's)."""
    from tools import cluster  # noqa: PLC0415
    if cluster.is_cluster():
        return cluster.spawn_cluster(spawn_berth_node, data_dir, extra_args, bin_path=bin_path, timeout=timeout,
                                     log_path=log_path, env=env, anonymous=anonymous, listen=listen)
    return spawn_berth_node(data_dir, extra_args, bin_path=bin_path, timeout=timeout, log_path=log_path,
                            env=env, anonymous=anonymous, listen=listen)


def spawn_berth_node(data_dir, extra_args=(), *, bin_path=None, timeout: float = 20.0,
                     log_path=None, env=None, anonymous: bool = True,
                     listen: str = "127.0.0.1:0") -> BerthProcess:
    """Start ``berth serve`` on 127.0.0.1:0 with ``--data data_dir`` and, unless
    ``anonymous`` is false, ``--anonymous``.

    Waits (at most ``timeout`` seconds) for the stdout line
    ``berth: listening on http(s)://127.0.0.1:PORT``. stderr (logs) is appended
    to ``log_path`` (default ``<data_dir>/../berth-<n>.log``, next to the data
    dir rather than inside it). Raises RuntimeError with the log tail if
    the process exits or never becomes ready.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = Path(bin_path or os.environ.get("BERTH_BIN") or DEFAULT_BERTH_BIN)
    if not binary.exists():
        raise RuntimeError(f"Berth binary not found at {binary} (build it or set BERTH_BIN)")
    if log_path is None:
        log_path = data_dir.parent / f"berth-{data_dir.name}-{int(time.time() * 1000)}.log"
    log_path = Path(log_path)
    cmd = [str(binary), "serve", "--listen", listen, "--data", str(data_dir),
           *(["--anonymous"] if anonymous else []), *extra_args]
    log_fh = open(log_path, "ab")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_fh,
                                stdin=subprocess.DEVNULL, env=env)
    finally:
        log_fh.close()  # the child keeps its own descriptor

    lines: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:  # keeps draining stdout so the pipe never fills up
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode(errors="replace").rstrip("\n"))
        lines.put("")  # EOF marker (empty string never matches READY_RE)

    threading.Thread(target=pump, name=f"berth-stdout-{proc.pid}", daemon=True).start()

    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _stop_process(proc, 2.0)
            raise RuntimeError(f"Berth did not report readiness within {timeout}s; "
                               f"stdout={seen!r}\n--- log tail ---\n{_tail(log_path)}")
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            if proc.poll() is not None and lines.empty():
                raise RuntimeError(f"Berth exited with {proc.returncode} before becoming ready; "
                                   f"stdout={seen!r}\n--- log tail ---\n{_tail(log_path)}")
            continue
        m = READY_RE.match(line)
        if m:
            return BerthProcess(proc, m.group(1).rstrip("/"), data_dir, log_path, lines)
        seen.append(line)
        if line == "" and proc.poll() is not None:
            raise RuntimeError(f"Berth exited with {proc.returncode} before becoming ready; "
                               f"stdout={seen!r}\n--- log tail ---\n{_tail(log_path)}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http_ok(url: str, proc: subprocess.Popen, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    sess = requests.Session()
    sess.trust_env = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited with {proc.returncode}\n{_tail(log_path)}")
        try:
            if sess.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"registry at {url} not ready within {timeout}s\n{_tail(log_path)}")


@dataclass
class DistributionProcess:
    proc: subprocess.Popen
    url: str
    root: Path
    log_path: Path

    def stop(self, grace: float = 10.0) -> int | None:
        return _stop_process(self.proc, grace)


def spawn_distribution(workdir, *, bin_path=None, timeout: float = 20.0) -> DistributionProcess:
    """Start CNCF distribution (``docker-registry serve config.yml``) with a
    filesystem root under ``workdir``, deletes enabled, on a free loopback port."""
    workdir = Path(workdir)
    binary = bin_path or os.environ.get("DISTRIBUTION_BIN") or shutil.which("docker-registry") \
        or shutil.which("registry") or "/usr/bin/docker-registry"
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    last_err: Exception | None = None
    for attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        cfg = workdir / "config.yml"
        cfg.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {root}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        log_path = workdir / f"distribution-{attempt}.log"
        with open(log_path, "ab") as log_fh:
            proc = subprocess.Popen([str(binary), "serve", str(cfg)], stdout=log_fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http_ok(url + "/v2/", proc, timeout, log_path)
            return DistributionProcess(proc, url, root, log_path)
        except RuntimeError as e:
            last_err = e
            _stop_process(proc, 2.0)
    raise RuntimeError(f"could not start distribution: {last_err}")


# --------------------------------------------------------------------------
# Target selection
# --------------------------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption("--target", choices=TARGETS, default=None,
                     help="registry under test: berth (default; spawns $BERTH_BIN), "
                          "distribution (spawns docker-registry), url ($REGISTRY_URL)")


def resolve_target(config) -> tuple[str, str]:
    """(target, flavor). flavor is berth|distribution|other and selects expectations."""
    target = config.getoption("--target")
    if target is None:
        if os.environ.get("REGISTRY_URL"):
            target = "url"
        elif os.environ.get("WITH_DISTRIBUTION") == "1":
            target = "distribution"
        else:
            target = "berth"
    if target == "url":
        flavor = os.environ.get("REGISTRY_IMPL", "other").lower()
        if flavor not in ("berth", "distribution", "other"):
            raise pytest.UsageError("REGISTRY_IMPL must be berth, distribution or other")
    else:
        flavor = target
    return target, flavor


# How long a change of identities, policies or repository settings takes to apply on every node
# of a cluster: nodes cache what they looked up for 0.5 s (crates/server/src/backends.rs,
# CLUSTER_CACHE_TTL); the issue asks for within one second.
CLUSTER_PROPAGATION_SECS = 0.6
# ECR operations that change what the nodes cache.
_PROPAGATING = ("SetRepositoryPolicy", "DeleteRepositoryPolicy", "PutRegistryPolicy", "DeleteRegistryPolicy",
                "PutImageTagMutability", "PutImageScanningConfiguration", "CreateRepository", "DeleteRepository",
                "TagResource", "UntagResource", "PutLifecyclePolicy", "DeleteLifecyclePolicy")


def _wait_for_propagation() -> None:
    """In a cluster run, a client that changed identities or policies through one node waits out
    the nodes' cache life before relying on the change through another, as the scale-out
    guarantee says (changes apply on every node within one second). Applies to ECR calls that
    change what nodes cache and to `berth admin` (users, keys, policies)."""
    import botocore.client  # noqa: PLC0415

    make_call = botocore.client.BaseClient._make_api_call

    def call(self, operation_name, api_params):
        try:
            return make_call(self, operation_name, api_params)
        finally:
            if operation_name in _PROPAGATING:
                time.sleep(CLUSTER_PROPAGATION_SECS)

    botocore.client.BaseClient._make_api_call = call
    run = subprocess.run

    def run_admin(*args, **kwargs):
        try:
            return run(*args, **kwargs)
        finally:
            argv = args[0] if args else kwargs.get("args")
            if isinstance(argv, (list, tuple)) and len(argv) > 1 and str(argv[0]).endswith("berth") \
                    and str(argv[1]) == "admin":
                time.sleep(CLUSTER_PROPAGATION_SECS)

    subprocess.run = run_admin


def pytest_configure(config):
    config._berth_target = resolve_target(config)
    from tools import cluster  # noqa: PLC0415
    if cluster.is_cluster():
        _wait_for_propagation()
    if cluster.is_cluster() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        # SIGTERM (tests/cluster.sh ending the run) as Ctrl-C: fixtures tear down, so the
        # clusters' nodes and proxies stop, and so do the engines this session started.
        def interrupt(_sig, _frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, interrupt)


def pytest_unconfigure(config):
    from tools import cluster  # noqa: PLC0415
    cluster.stop_engines()  # those this session started, if any


def pytest_report_header(config):
    from tools import cluster  # noqa: PLC0415
    target, flavor = config._berth_target
    extra = f" REGISTRY_URL={os.environ.get('REGISTRY_URL')}" if target == "url" else ""
    if target == "berth" and cluster.is_cluster():
        store = "PostgreSQL + S3" if cluster.uses_engines() else "embedded store (harness check)"
        extra += f"; backend: cluster of {cluster.node_count()} nodes on {store} behind haproxy"
    return f"registry target: {target} (expectations: {flavor}){extra}"


def pytest_collection_modifyitems(config, items):
    """Turn documented deviations into strict xfails for the affected flavor only.

    * ``@pytest.mark.spec_1_1``: features new in distribution-spec v1.1
      (referrers API); distribution 2.8 predates them.
    * ``@pytest.mark.deviation("distribution", reason="...")``: a documented
      behaviour of that implementation that contradicts the spec (or, where the
      spec is silent, Berth's documented choice).

    xfails are strict: if the implementation starts behaving, the run says so.

    * ``@pytest.mark.embedded_only("reason")``: skipped with ``BERTH_TEST_BACKEND=cluster``.
    """
    from tools import cluster  # noqa: PLC0415
    target, flavor = config._berth_target
    in_cluster = target == "berth" and cluster.is_cluster()
    for item in items:
        mark = item.get_closest_marker("embedded_only")
        if in_cluster and mark is not None:
            reason = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "")
            item.add_marker(pytest.mark.skip(reason=f"embedded backend only: {reason}"))
            continue
        if flavor == "distribution" and item.get_closest_marker("spec_1_1"):
            item.add_marker(pytest.mark.xfail(
                reason="distribution 2.8 does not implement distribution-spec v1.1 "
                       "(referrers API, OCI-Subject)", strict=True))
            continue
        for mark in item.iter_markers("deviation"):
            if flavor in mark.args:
                item.add_marker(pytest.mark.xfail(reason=mark.kwargs.get("reason", ""),
                                                  strict=mark.kwargs.get("strict", True)))
                break


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@dataclass
class Registry:
    url: str
    kind: str      # "berth" (spawned here) or "external"
    target: str    # berth | distribution | url
    flavor: str    # berth | distribution | other: which expectations apply
    process: object | None = None

    @property
    def is_berth(self) -> bool:
        return self.flavor == "berth"

    @property
    def is_distribution(self) -> bool:
        return self.flavor == "distribution"

    @property
    def strict_errors(self) -> bool:
        """Error bodies must be spec JSON (always for Berth; the spec itself
        allows any 4xx body format, so a registry known to use text bodies on
        some routes is checked against the spec's rule instead)."""
        return not self.is_distribution


@pytest.fixture(scope="session")
def distribution_server(request, tmp_path_factory):
    """A CNCF distribution server on a free loopback port (filesystem root in a
    temp dir, deletes enabled). Used by ``registry`` when the target is
    distribution; other tests may request it for side-by-side comparisons,
    which run only with ``WITH_DISTRIBUTION=1`` (skipped otherwise)."""
    target, _ = request.config._berth_target
    if target != "distribution" and os.environ.get("WITH_DISTRIBUTION") != "1":
        pytest.skip("CNCF distribution not requested (set WITH_DISTRIBUTION=1)")
    try:
        proc = spawn_distribution(tmp_path_factory.mktemp("distribution"))
    except (RuntimeError, OSError) as e:
        pytest.fail(f"could not start CNCF distribution: {e}", pytrace=False)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def registry(request, tmp_path_factory):
    target, flavor = request.config._berth_target
    if target == "url":
        url = os.environ.get("REGISTRY_URL")
        if not url:
            pytest.fail("--target=url needs REGISTRY_URL")
        yield Registry(url.rstrip("/"), "external", target, flavor)
        return
    if target == "distribution":
        proc = request.getfixturevalue("distribution_server")
        yield Registry(proc.url, "external", target, flavor, proc)
        return
    base = tmp_path_factory.mktemp("berth")
    try:
        proc = spawn_berth(base / "data")
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield Registry(proc.url, "berth", target, flavor, proc)
    alive = proc.alive()
    proc.stop()
    if not alive:
        print(f"\nBerth died during the session; log tail:\n{proc.log_tail()}")


@pytest.fixture
def oci(registry):
    from conformance.ociclient import OciClient
    client = OciClient(registry.url)
    yield client
    client.s.close()


@pytest.fixture
def repo(request):
    """A unique repository name for this test, e.g. ``conf/test-foo-1a2b3c4d``."""
    from conformance.ociclient import unique_repo
    return unique_repo("conf", request.node.name)


@pytest.fixture
def expect_error(registry):
    """``expect_error(resp, status, codes)`` with the error-body strictness of
    the registry under test (see ``checks.expect_error``): Berth must answer the
    spec's codes only; other registries may answer the legacy docker codes."""
    from conformance import checks

    def _expect(resp, status, codes=None):
        return checks.expect_error(resp, status, codes, json_required=registry.strict_errors,
                                   legacy_codes=not registry.is_berth)
    return _expect


@pytest.fixture(autouse=True)
def _cluster_resources():
    """Cluster backend: the databases and buckets of the data dirs a test made (and whose
    clusters are stopped) are dropped after it; Ceph's memstore keeps every object in RAM."""
    from tools import cluster  # noqa: PLC0415
    if not cluster.is_cluster():
        yield
        return
    before = cluster.resources_in_use()
    yield
    cluster.release(cluster.resources_in_use() - before)


@pytest.fixture(autouse=True)
def _registry_alive(request):
    """After each test that used the registry, fail loudly if a spawned server died."""
    yield
    if "registry" not in request.fixturenames:
        return
    reg = request.getfixturevalue("registry")
    proc = reg.process
    if proc is not None and proc.proc.poll() is not None:
        pytest.fail(f"registry process exited ({proc.proc.returncode}); log tail:\n"
                    f"{_tail(proc.log_path)}", pytrace=False)


def direct_node(proc, i: int = 0):
    """``proc`` itself for one ``berth serve``; for a cluster, the same cluster seen through
    node ``i``'s own address (``url``, ``pid``). For tests of one server's transport (timeouts,
    connection caps, memory), which a proxy in front would answer in the server's place."""
    return proc.direct(i) if hasattr(proc, "direct") else proc


__all__ = ["spawn_berth", "spawn_berth_node", "BerthProcess", "spawn_distribution", "DistributionProcess",
           "free_port", "Registry", "direct_node"]
