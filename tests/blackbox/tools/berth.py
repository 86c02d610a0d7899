"""Starting Berth from the black-box tests: which binary, and the environment of a secured server."""

from __future__ import annotations

import os


def berth_binary() -> str:
    """$BERTH_BIN, else the debug build."""
    from conftest import DEFAULT_BERTH_BIN  # noqa: PLC0415
    return os.environ.get("BERTH_BIN") or str(DEFAULT_BERTH_BIN)


def secured_env(admin_key: str, admin_secret: str, domain: str | None = None) -> dict[str, str]:
    """The caller's environment without any BERTH_ setting, plus the administrator's key, no
    create-on-push and, with `domain`, each account's registry at `<account>.<domain>`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env.update(BERTH_ADMIN_ACCESS_KEY_ID=admin_key, BERTH_ADMIN_SECRET_ACCESS_KEY=admin_secret,
               BERTH_CREATE_ON_PUSH="false", RUST_BACKTRACE="0")
    if domain:
        env["BERTH_SERVER__REGISTRY_DOMAIN"] = domain
    return env


def backend_env(data_dir, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a berth process (`berth admin --data data_dir`, or a `berth serve`
    a test starts itself): `env` (default: ours), plus, with BERTH_TEST_BACKEND=cluster, the
    settings that put it on that data dir's database and bucket (the ones its cluster's nodes
    use; see tools/cluster.py)."""
    from tools import cluster  # noqa: PLC0415
    base = dict(os.environ if env is None else env)
    if not cluster.is_cluster():
        return base
    return cluster.node_env(data_dir, base)
