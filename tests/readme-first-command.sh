#!/usr/bin/env bash
# Runs README's first command (the one that runs the registry) exactly as written, from the
# root of this checkout, and checks that /v2/ answers. CI runs it on its fresh clone, so the
# first thing a new user types cannot break unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The first line of the first ```sh block in README.
cmd=$(awk '/^```sh$/ {getline; print; exit}' README.md)
[[ -n "$cmd" ]] || { echo "readme check: no \`\`\`sh block in README.md" >&2; exit 1; }
echo "readme check: running: $cmd"
if (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
  echo "readme check: something already listens on 127.0.0.1:5000; stop it first" >&2
  exit 1
fi
data_existed=0; [[ -e berth-data ]] && data_existed=1
log=$(mktemp)
setsid bash -c "$cmd" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -TERM -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  ((data_existed)) || rm -rf berth-data
  rm -f "$log"
}
trap cleanup EXIT
# A cold release build takes minutes on two cores.
for _ in $(seq 1 1200); do
  if status=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/v2/ 2>/dev/null) && [[ "$status" == 200 ]]; then
    echo "readme check: /v2/ answered 200"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "readme check: the command exited before /v2/ answered:" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  sleep 1
done
echo "readme check: /v2/ did not answer within 20 minutes" >&2
tail -30 "$log" >&2
exit 1
