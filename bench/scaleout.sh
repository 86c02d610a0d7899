#!/usr/bin/env bash
# Issue 11's benchmark: Berth on PostgreSQL and S3 (one node, and three behind HAProxy), CNCF
# distribution on the same S3 server, embedded Berth, and boto3 moving the same bytes (the
# ceiling), side by side in one run of `berth-bench scaleout` (crates/bench/src/scaleout.rs).
#
#   bench/scaleout.sh [berth-bench scaleout flags...]     # e.g. --rounds 5, --size-mib 256
#
# Builds the release binaries (NO_BUILD=1 skips that), then runs the bench against the engines
# named by BERTH_TEST_PG_URL and BERTH_TEST_S3_ENDPOINT (+ BERTH_TEST_S3_ACCESS_KEY_ID,
# BERTH_TEST_S3_SECRET_ACCESS_KEY, BERTH_TEST_S3_REGION) when set; otherwise it starts its own
# PostgreSQL and one-node Ceph radosgw for the run (tests/with-engines.sh, which stops them at
# the end). The bench makes its own databases and buckets and removes them when it ends.
# Ceph keeps objects in RAM (memstore): the run holds at most a few GiB at a time.
# Needs docker-registry, haproxy, postgresql, radosgw, ceph-mon, ceph-osd (Debian) and boto3.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$PWD/$target"
if [[ -z "${NO_BUILD:-}" ]]; then
  cargo build --release -p berth-server -p berth-bench
fi
if [[ -z "${BERTH_TEST_PG_URL:-}" || -z "${BERTH_TEST_S3_ENDPOINT:-}" ]]; then
  # The memstore device is only a bound on what the OSD may hold in RAM, not an allocation.
  export BERTH_TEST_CEPH_MEMSTORE_BYTES="${BERTH_TEST_CEPH_MEMSTORE_BYTES:-$((12 << 30))}"
  NO_BUILD=1 exec bash tests/with-engines.sh bash bench/scaleout.sh "$@"
fi
# In the background, so that a TERM (from with-engines.sh, or Ctrl-C) reaches the bench, which
# then stops its servers and removes its databases and buckets.
"$target/release/berth-bench" scaleout --berth "$target/release/berth" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null || true' INT TERM
wait "$bench" || { code=$?; wait "$bench" 2>/dev/null || true; exit "$code"; }
