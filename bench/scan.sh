#!/usr/bin/env bash
# The vulnerability scanning benchmark (issue 12): builds what bench/scan.py runs (release) and
# runs it. Arguments go to bench/scan.py (`--quick` for a smoke run under a minute).
#
#   bench/scan.sh [--quick] [--sections push,cached,throughput,match,rematch,rss] [...]
#
# Environment: CARGO_TARGET_DIR (default target/), BERTH_SCAN_CACHE (the Debian fixture and the
# big layer, kept between runs; default /tmp/berth-scan-cache). Needs python3 with boto3 and
# requests (tests/blackbox/requirements.txt), gzip, zstd, tar, /usr/bin/time and, without
# --quick, mmdebstrap (the Debian fixture, made once).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release -q -p berth-server
cargo build --release -q -p berth-scanner --example inventory
cargo build --release -q -p berth-vulndb --example vulndb_bench --example match_bench
case " $* " in
  *" --quick "*) ;;
  *) cargo test --release -q -p berth-scanner --test matcher_rate --no-run ;;
esac
echo "load averages before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec python3 bench/scan.py "$@"
