#!/usr/bin/env bash
# Installs what the black-box tests and the benchmark drive Berth with: real clients
# (docker, podman, skopeo, buildah), CNCF distribution (docker-registry) as the reference
# registry, and pytest. Debian, as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for p in docker.io podman skopeo buildah docker-registry uidmap; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 -m pip install -q -r "$(dirname "$0")/blackbox/requirements.txt"
