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
