#!/usr/bin/env bash
# The black-box suites again, each spawned Berth being a cluster of three nodes on PostgreSQL +
# S3 (Ceph radosgw) behind a per-request round-robin haproxy (BERTH_TEST_BACKEND=cluster; see
# tests/blackbox/tools/cluster.py). Starts PostgreSQL and Ceph once for the run and stops them on
# exit. Arguments go to pytest (default: the suites of tests/run.sh). Needs the Debian packages
# of tests/install-deps.sh and $BERTH_BIN (default: the debug build).
#
#   bash tests/cluster.sh                      # everything
#   bash tests/cluster.sh crash -k kill9 -x    # a part
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$PWD/$target"
export BERTH_BIN="${BERTH_BIN:-$target/debug/berth}"
[[ -x "$BERTH_BIN" ]] || { echo "cluster.sh: no berth binary at $BERTH_BIN (cargo build, or set BERTH_BIN)" >&2; exit 1; }

work="$(mktemp -d /tmp/berth-engines.XXXXXX)"
engines=""
tests=""
# Ends a child we started: `sig`, then up to `secs` seconds, then SIGKILL.
end() {
  local pid=$1 sig=$2 secs=$3
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  # pytest first: on SIGTERM (taken as Ctrl-C in cluster runs, see conftest) it tears its
  # fixtures down, which stops the clusters it started.
  [[ -z "$tests" ]] || end "$tests" TERM 60
  if [[ -n "$engines" ]] && kill -0 "$engines" 2>/dev/null; then
    kill -TERM "$engines" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do kill -0 "$engines" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$engines" 2>/dev/null; then  # the supervisor hung: end it and its engines hard
      kill -KILL "$engines" 2>/dev/null || true
      [[ -s "$work/pids" ]] && xargs -r kill -KILL < "$work/pids" 2>/dev/null || true
    fi
    wait "$engines" 2>/dev/null || true
  fi
  local log=""
  [[ -s "$work/engines.log" ]] && log="$(sed 's/^/cluster.sh: /' "$work/engines.log")"
  rm -rf "$work"
  trap '' PIPE  # stderr may be a closed pipe by now (`... | head`): the cleanup is done anyway
  [[ -z "$log" ]] || printf '%s\n' "$log" >&2 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd tests/blackbox && exec python3 -m tools.engines serve --env-file "$work/env" --pid-file "$work/pids") \
  > "$work/engines.log" 2>&1 &
engines=$!
for ((i = 0; i < 1800; i++)); do  # at most 180 s (Ceph takes about 15 s)
  [[ -s "$work/env" ]] && break
  kill -0 "$engines" 2>/dev/null || { echo "cluster.sh: the engines did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$work/env" ]] || { echo "cluster.sh: the engines were not up within 180 s" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/env"
export BERTH_TEST_BACKEND=cluster
if (($#)); then
  suites=("$@")
else
  suites=(conformance clients crash server ecr hostile)
fi
# In the background, so that a signal to this script is handled at once (cleanup above).
(cd tests/blackbox && exec python3 -m pytest -q "${suites[@]}") &
tests=$!
wait "$tests"
