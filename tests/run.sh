#!/usr/bin/env bash
# The test command: every Rust test (the PostgreSQL and S3 stores' against real engines), then
# the black-box suites (OCI conformance, docker / podman / skopeo, kill -9 crash tests) against
# the real berth binary, embedded and then as three nodes on PostgreSQL and Ceph radosgw, then a
# short smoke run of the benchmark, then 10 s of fuzzing per parser (tests/fuzz.sh). `--install`
# first installs the Debian and PyPI packages they need. PostgreSQL and Ceph are started once,
# for the whole run (tests/with-engines.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--install" ]]; then
  bash tests/install-deps.sh
fi
if [[ -z "${BERTH_TEST_PG_URL:-}" || -z "${BERTH_TEST_S3_ENDPOINT:-}" ]]; then
  exec bash tests/with-engines.sh bash tests/run.sh
fi
cargo fmt --all -- --check
# Generated code must be what the generator makes from the pinned botocore model.
cargo run -q -p berth-xtask -- codegen --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The generator's own checks need python3 with botocore, so plain `cargo test` leaves them out.
cargo test -q -p berth-xtask -- --ignored
cargo build --workspace
# Binaries are where cargo put them (CARGO_TARGET_DIR, when set, moves them).
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$PWD/$target"
# The benchmark is measured by hand (see README); here it only has to run end to end.
"$target/debug/berth-bench" --berth "$target/debug/berth" --size-mib 8 --small-blobs 50 \
  --manifests 20 --manifest-gets 200 --tags 100 --ecr-requests 200 --ecr-batch-requests 20 \
  --gc-images 50 | tail -27
"$target/debug/berth-bench" ecr --berth "$target/debug/berth" --baseline-bin "$target/debug/berth" \
  --images 20 --requests 100 --batch-requests 10 | tail -10
"$target/debug/berth-bench" growth --berth "$target/debug/berth" --sizes 50,100 --put-images 10 \
  --gets 100 --batch-rounds 2 --describe-pages 2 --previews 1 --settle-secs 0 | tail -22
export BERTH_BIN="$target/debug/berth"
(cd tests/blackbox && python3 -m pytest -q conformance clients crash server ecr hostile scanning)
bash tests/cluster.sh
bash tests/fuzz.sh 10
