#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes outside bytes (fuzz/fuzz_targets), each for
# a bounded time: tests/fuzz.sh [SECONDS_PER_TARGET] (default 10). Installs the pinned
# cargo-fuzz when missing. libFuzzer needs nightly-only rustc flags; RUSTC_BOOTSTRAP=1 lets the
# installed stable compiler accept them. No sanitizer: the workspace forbids unsafe code, so
# AddressSanitizer would find nothing Rust's own checks do not, at twice the build and run
# time; debug assertions and overflow checks stay on. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
CARGO_FUZZ_VERSION=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer none
for target in $(cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for ${secs}s"
  # New inputs go to fuzz/corpus (ignored by git); fuzz/seeds is the committed starting set.
  # grep keeps the summary and any panic out of libFuzzer's chatter; with pipefail the status is
  # cargo fuzz's.
  if ! cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 2>&1 |
    { grep -E -A3 '^(stat::number_of_executed_units|==[0-9]+== ERROR|thread .* panicked)|Done [0-9]+ runs' || true; }; then
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
done
