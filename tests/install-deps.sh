#!/usr/bin/env bash
# Installs what the black-box tests and the benchmark drive Berth with: real clients
# (docker, podman, skopeo, buildah), CNCF distribution (docker-registry) as the reference
# registry, and pytest; for the scale-out runs (tests/cluster.sh), PostgreSQL, a one-node Ceph
# (mon, OSD, radosgw) for S3, and haproxy in front of the nodes. Debian, as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
# Scanning (issue 12): mmdebstrap builds the Debian fixture image, rpm makes a real rpmdb.sqlite,
# and the ecosystems' own version tools are the oracles the comparators are checked against
# (dpkg, rpm, python3-packaging, node's semver, Maven's ComparableVersion, Go's x/mod/semver,
# Ruby's Gem::Version).
for p in docker.io podman skopeo buildah docker-registry uidmap postgresql haproxy radosgw ceph-mon ceph-osd \
  mmdebstrap rpm zstd binutils node-semver default-jre-headless maven libmaven3-core-java ruby golang-go; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# Node and npm (the JavaScript SDK tests): Debian's, unless a node with its own npm is installed
# already (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 -m pip install -q -r "$(dirname "$0")/blackbox/requirements.txt"
