#!/bin/bash
# packaging/build-deb.sh [BUILD_DIR]: builds the Debian package from a
# `make dist` tarball (so the package is made of exactly what we ship), with
# the tarball's packaging/debian/ as its debian/ directory.  Needs debhelper and
# dh-autoreconf (apt-get install debhelper dh-autoreconf).  The .deb ends up
# in BUILD_DIR/deb/.
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:-$SRC_DIR/build}
[ -f "$BUILD_DIR/Makefile" ] || { echo "build-deb: configure a build in $BUILD_DIR first (tests/stack.sh test does)" >&2; exit 1; }
make -C "$BUILD_DIR" dist-gzip >/dev/null
tarball=$(ls -t "$BUILD_DIR"/bulk-enroll-*.tar.gz | head -n 1)
work=$BUILD_DIR/deb
rm -rf "$work"
mkdir -p "$work"
tar -C "$work" -xzf "$tarball"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'bulk-enroll-*')
cp -r "$src/packaging/debian" "$src/debian"
(cd "$src" && dpkg-buildpackage -us -uc -b)
ls -l "$work"/*.deb
