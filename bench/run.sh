#!/usr/bin/env bash
# Builds and runs the benchmarks with their defaults (see bench/README.md).
# Usage: bench/run.sh [build dir]   (default: build/ next to this repo's sources)
# Extra flags go through BENCH_INGEST_FLAGS / BENCH_SCALE_FLAGS / BENCH_LINK_FLAGS /
# BENCH_DIRECTIVE_FLAGS / BENCH_DEADLINE_FLAGS, e.g.
#   BENCH_SCALE_FLAGS="--keep /var/tmp/whistle-1m" bench/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build}"

[ -f "$build/CMakeCache.txt" ] || cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)" --target ingest_bench store_scale_bench link_bench directive_bench \
  deadline_bench

echo "== $(date -u +%FT%TZ)  $(nproc) CPUs  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo
echo "== ingest_bench"
# shellcheck disable=SC2086
"$build/bench/ingest_bench" ${BENCH_INGEST_FLAGS:-}
echo
echo "== store_scale_bench"
# shellcheck disable=SC2086
"$build/bench/store_scale_bench" ${BENCH_SCALE_FLAGS:-}
echo
echo "== link_bench"
# shellcheck disable=SC2086
"$build/bench/link_bench" ${BENCH_LINK_FLAGS:-}
echo
echo "== directive_bench"
# shellcheck disable=SC2086
"$build/bench/directive_bench" ${BENCH_DIRECTIVE_FLAGS:-}
echo
echo "== deadline_bench"
# shellcheck disable=SC2086
"$build/bench/deadline_bench" ${BENCH_DEADLINE_FLAGS:-}
