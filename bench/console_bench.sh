#!/usr/bin/env bash
# Leaders' console benchmark (issue 10; not in CI): first meaningful paint of the tree view and
# the live latency from a committed transition to the open page, with 100,000 stored cases, in
# Debian's headless Chromium. See bench/README.md ("console_bench").
#
#   bench/console_bench.sh [--build DIR] [flags of bench/console/console_bench.mjs]
#
# Needs whistled, whistlectl and whistle-console built in the build dir (default ./build;
# `cmake --build build -j2 --target whistled whistlectl whistle-console`), /usr/bin/chromium,
# Node.js >= 20. Installs bench/console's pinned npm packages (npm ci) and builds the page
# (app/console/web/build.sh) when missing. Every process it starts is stopped on exit.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$ROOT/build
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --build=*) BUILD=$(cd "${1#--build=}" && pwd); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
for f in app/whistled cli/whistlectl app/console/whistle-console; do
  if [ ! -x "$BUILD/$f" ]; then
    echo "console_bench: $BUILD/$f is missing: cmake --build $BUILD -j2 --target whistled whistlectl whistle-console" >&2
    exit 2
  fi
done
stamp=$HERE/console/node_modules/.whistle-lock.sha256
sum=$(sha256sum "$HERE/console/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  (cd "$HERE/console" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$sum" >"$stamp"
fi
[ -f "$ROOT/app/console/web/dist/index.html" ] || "$ROOT/app/console/web/build.sh" >/dev/null
cd "$HERE/console"
# exec: node's own exit/signal handlers stop whistled, whistle-console and Chromium
exec node console_bench.mjs --build "$BUILD" "${args[@]}"
