#!/usr/bin/env bash
# Second command of the README (and what CI runs): the whole test suite.
#  1. a -Werror build with the Criterion suite (loader, npy, encode vs numpy
#     golden, rules, CLI end-to-end, the checkkernels harness incl. NEON under
#     qemu, the layer back-edge link check and the exported-symbols test)
#  1b. the release build (-O3, what scripts/setup.sh builds) with -Werror:
#     build only, plus the exported-symbols test
#  2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#  3. the worker pool and the ring under ThreadSanitizer, and the `saemon serve`
#     end-to-end tests (consumer, HTTP and sink threads) with a TSan build
#  4. a short libFuzzer run of every parser harness
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

run_suite() { # name, meson options...
  local dir=$1; shift
  [[ -f $dir/build.ninja ]] || meson setup "$dir" -Dwerror=true "$@"
  ninja -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier "${TIMEOUT_MULTIPLIER:-3}"
}

echo "== test suite (debugoptimized, -Werror)"
run_suite build-test --buildtype=debugoptimized
echo "== release build (-Werror)"
[[ -f build-release/build.ninja ]] || meson setup build-release -Dwerror=true --buildtype=release
ninja -C build-release
meson test -C build-release --suite abi --print-errorlogs
echo "== test suite under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
echo "== worker pool, ring and saemon serve under ThreadSanitizer"
[[ -f build-tsan/build.ninja ]] || meson setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false -Dbench=false
ninja -C build-tsan tests/runtime/stress-threads tests/ring/stress-ring tests/sidecar/syscall-producer saemon
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" meson test -C build-tsan --suite stress --suite sidecar --print-errorlogs --no-rebuild
if [[ -x tests/fuzz/run.sh ]]; then
  echo "== fuzzing (short run)"
  tests/fuzz/run.sh "${FUZZ_SECONDS:-15}"
fi
echo "test.sh: all suites passed"
