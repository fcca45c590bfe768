#!/usr/bin/env bash
# First command of the README: install the packages, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build --buildtype=release
ninja -C build
./build/saemon demo
