#!/bin/sh
# Build every libFuzzer harness (tests/fuzz/fuzz-*.c) with clang + ASan/UBSan
# and run each for SECONDS (default 20) from its seed corpus
# tests/fuzz/corpus/<harness>/. Exits non-zero if any harness finds a crash.
# Usage: tests/fuzz/run.sh [SECONDS]
set -eu
secs=${1:-20}
src=$(cd "$(dirname "$0")/../.." && pwd)
build="$src/build-fuzz"
cd "$src"
if [ -d "$build" ]; then
    meson setup --reconfigure "$build" >/dev/null
else
    # fuzzer-no-link instruments the library for coverage; harnesses link libFuzzer.
    CC=clang meson setup "$build" -Dfuzz=true -Dbench=false \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$build" >/dev/null

status=0
for exe in "$build"/tests/fuzz/fuzz-*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    name=$(basename "$exe")
    work="$build/fuzz-work/$name"
    art="$build/fuzz-artifacts/$name/"
    mkdir -p "$work" "$art"
    set -- "$work"
    [ -d "tests/fuzz/corpus/$name" ] && set -- "$@" "tests/fuzz/corpus/$name"
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    echo "== $name (${secs}s)"
    if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$exe" $dict \
            -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$art" -print_final_stats=1 "$@" \
            >"$build/fuzz-work/$name.log" 2>&1; then
        echo "!! $name FAILED; log: $build/fuzz-work/$name.log, inputs: $art"
        tail -n 40 "$build/fuzz-work/$name.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$build/fuzz-work/$name.log" | tail -n 2
    fi
done
exit $status
