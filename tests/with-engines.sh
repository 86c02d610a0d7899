#!/usr/bin/env bash
# Runs a command with PostgreSQL and Ceph radosgw (S3) up, started once for it and stopped when
# it ends (or on Ctrl-C / SIGTERM). The command sees:
#   BERTH_TEST_PG_URL, BERTH_TEST_S3_*   the engines, for the black-box cluster runs;
#   TEST_DATABASE_URL                    PostgreSQL, for crates/meta-postgres's tests;
#   TEST_S3_ENDPOINT, TEST_S3_BUCKET, TEST_S3_ACCESS_KEY_ID, TEST_S3_SECRET_ACCESS_KEY
#                                        a bucket, for crates/blobstore-s3's tests.
# When BERTH_TEST_PG_URL and BERTH_TEST_S3_ENDPOINT are already set, those engines are used.
# Needs the Debian packages of tests/install-deps.sh. Every wait is bounded.
#
#   bash tests/with-engines.sh cargo test -p berth-meta-postgres
set -euo pipefail
cd "$(dirname "$0")/.."
(($#)) || { echo "usage: with-engines.sh COMMAND [ARGS...]" >&2; exit 2; }

work="$(mktemp -d /tmp/berth-engines.XXXXXX)"
engines=""
child=""
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
  # The command first: on SIGTERM a cluster run (taken as Ctrl-C, see conftest) tears its
  # fixtures down, which stops the clusters it started.
  [[ -z "$child" ]] || end "$child" TERM 60
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
  [[ -s "$work/engines.log" ]] && log="$(sed 's/^/with-engines.sh: /' "$work/engines.log")"
  rm -rf "$work"
  trap '' PIPE  # stderr may be a closed pipe by now (`... | head`): the cleanup is done anyway
  [[ -z "$log" ]] || printf '%s\n' "$log" >&2 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${BERTH_TEST_PG_URL:-}" || -z "${BERTH_TEST_S3_ENDPOINT:-}" ]]; then
  (cd tests/blackbox && exec python3 -m tools.engines serve --env-file "$work/env" --pid-file "$work/pids") \
    > "$work/engines.log" 2>&1 &
  engines=$!
  for ((i = 0; i < 1800; i++)); do  # at most 180 s (Ceph takes about 15 s)
    [[ -s "$work/env" ]] && break
    kill -0 "$engines" 2>/dev/null || { echo "with-engines.sh: the engines did not start" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$work/env" ]] || { echo "with-engines.sh: the engines were not up within 180 s" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$work/env"
fi
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-$BERTH_TEST_PG_URL/postgres}"
export TEST_S3_ENDPOINT="${TEST_S3_ENDPOINT:-$BERTH_TEST_S3_ENDPOINT}"
export TEST_S3_ACCESS_KEY_ID="${TEST_S3_ACCESS_KEY_ID:-${BERTH_TEST_S3_ACCESS_KEY_ID:-}}"
export TEST_S3_SECRET_ACCESS_KEY="${TEST_S3_SECRET_ACCESS_KEY:-${BERTH_TEST_S3_SECRET_ACCESS_KEY:-}}"
export TEST_S3_BUCKET="${TEST_S3_BUCKET:-berth-conformance}"
(cd tests/blackbox && python3 -c '
import os
from tools.engines import s3_client, ensure_bucket
ensure_bucket(s3_client(os.environ["TEST_S3_ENDPOINT"], os.environ["TEST_S3_ACCESS_KEY_ID"],
                        os.environ["TEST_S3_SECRET_ACCESS_KEY"]), os.environ["TEST_S3_BUCKET"])')

# In the background, so that a signal to this script is handled at once (cleanup above).
"$@" &
child=$!
wait "$child"
