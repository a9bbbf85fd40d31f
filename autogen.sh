#!/bin/sh
# Regenerates the autotools files after a fresh clone.
set -e
cd "$(dirname "$0")"
mkdir -p m4
exec autoreconf --install --force
