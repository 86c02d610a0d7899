#!/usr/bin/env bash
# Measures the current tree against an older commit in one run (issue 10: "measured side by
# side in one run").
#
#   bench/side-by-side.sh <old-commit> [ecr|growth|all] [extra berth-bench growth flags...]
#
# Builds <old-commit>'s `berth` release binary from a `git archive` of that commit in /tmp,
# into CARGO_TARGET_DIR=/work/target-baseline (kept between runs, so a second run rebuilds only
# what changed), builds the current tree's `berth` and `berth-bench`, then runs
#   berth-bench ecr    --berth NEW --baseline-bin OLD   (the ECR control plane)
#   berth-bench growth --berth NEW --baseline-bin OLD   (the growth table, before and after)
# Environment: BASELINE_TARGET (default /work/target-baseline), SIZES (default 1000,10000),
# ECR_REQUESTS (default 20000), ECR_BATCH_REQUESTS (default 1000).
set -euo pipefail

old="${1:?usage: bench/side-by-side.sh <old-commit> [ecr|growth|all] [growth flags...]}"
what="${2:-all}"
shift $(( $# >= 2 ? 2 : 1 ))
root="$(git rev-parse --show-toplevel)"
cd "$root"
rev="$(git rev-parse --verify "$old^{commit}")"
baseline_target="${BASELINE_TARGET:-/work/target-baseline}"
src="/tmp/berth-baseline-src-${rev:0:12}"

if [[ ! -f "$src/Cargo.toml" ]]; then
  rm -rf "$src.partial"
  mkdir -p "$src.partial"
  git archive "$rev" | tar -x -C "$src.partial"
  mv "$src.partial" "$src"
fi
echo "== building the baseline ${rev:0:12} into $baseline_target" >&2
(cd "$src" && CARGO_TARGET_DIR="$baseline_target" cargo build --release -p berth-server)
# Kept under a name of its own, so that a later build of another commit cannot replace it.
old_bin="$baseline_target/release/berth-${rev:0:12}"
cp "$baseline_target/release/berth" "$old_bin"

echo "== building the current tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', with changes'))" >&2
cargo build --release -p berth-server -p berth-bench
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$root/$target"
new_bin="$target/release/berth"
bench="$target/release/berth-bench"

echo "baseline: $rev ($old_bin)"
echo "berth:    $(git rev-parse HEAD)$(git diff --quiet || echo ' + uncommitted changes') ($new_bin)"
if [[ "$what" == ecr || "$what" == all ]]; then
  "$bench" ecr --berth "$new_bin" --baseline-bin "$old_bin" \
    --requests "${ECR_REQUESTS:-20000}" --batch-requests "${ECR_BATCH_REQUESTS:-1000}"
fi
if [[ "$what" == growth || "$what" == all ]]; then
  "$bench" growth --berth "$new_bin" --baseline-bin "$old_bin" --sizes "${SIZES:-1000,10000}" "$@"
fi
