#!/bin/sh
# Makes rpmdb.sqlite: an rpm 4.18 SQLite database (Debian 12's `rpm` package) holding two
# packages installed from dummy specs. Run from this directory: sh make-rpmdb.sh
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for spec in "berth-demo 1.2.3 4.el9 1" "berth-tools 0.9 1 0"; do
    set -- $spec
    cat > "$work/$1.spec" <<SPEC
Name: $1
Version: $2
Release: $3
Epoch: $4
Summary: Dummy package for Berth's scanner tests
License: Apache-2.0
BuildArch: noarch
%description
Dummy.
%files
SPEC
    rpmbuild --quiet --define "_topdir $work/top" -bb "$work/$1.spec"
done
rpm --dbpath "$work/db" --initdb
rpm -i --justdb --nodeps --dbpath "$work/db" "$work"/top/RPMS/noarch/*.rpm
sqlite3 "$work/db/rpmdb.sqlite" 'PRAGMA journal_mode=DELETE; VACUUM;' >/dev/null 2>&1 || true
cp "$work/db/rpmdb.sqlite" rpmdb.sqlite
