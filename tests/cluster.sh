#!/usr/bin/env bash
# The black-box suites again, each spawned Berth being a cluster of three nodes on PostgreSQL +
# S3 (Ceph radosgw) behind a per-request round-robin haproxy (BERTH_TEST_BACKEND=cluster; see
# tests/blackbox/tools/cluster.py), with the engines of tests/with-engines.sh (started for the
# run unless BERTH_TEST_PG_URL and BERTH_TEST_S3_ENDPOINT name running ones). Arguments go to
# pytest (default: the suites of tests/run.sh). Needs $BERTH_BIN (default: the debug build).
#
#   bash tests/cluster.sh                      # everything
#   bash tests/cluster.sh crash -k kill9 -x    # a part
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$PWD/$target"
export BERTH_BIN="${BERTH_BIN:-$target/debug/berth}"
[[ -x "$BERTH_BIN" ]] || { echo "cluster.sh: no berth binary at $BERTH_BIN (cargo build, or set BERTH_BIN)" >&2; exit 1; }
if (($#)); then
  suites=("$@")
else
  suites=(conformance clients crash server ecr hostile scanning)
fi
export BERTH_TEST_BACKEND=cluster
exec bash tests/with-engines.sh bash -c 'cd tests/blackbox && exec python3 -m pytest -q "$@"' cluster "${suites[@]}"
