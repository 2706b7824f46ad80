#!/usr/bin/env bash
# The leaders' console in a real headless Chromium against a real local federation.
#
#   tests/console/run.sh [BUILD_DIR]        (default: build)
#
# Installs what it needs, only when missing: Debian's chromium and a CJK font (apt), Node.js
# and npm (apt), the npm packages pinned in
# package-lock.json here (playwright-core, axe-core) and in app/console/web (npm ci, again
# only when a lock file changed). Builds the page
# (npm run build -> app/console/web/dist) and, in BUILD_DIR, whistled, whistlectl and
# whistle-console. Then runs console.test.mjs with node's test runner. Every process it starts
# (the federation's whistled nodes, whistle-console, Chromium) is stopped at the end, also on
# failure or Ctrl-C. Screenshots, axe-core reports and the exported CSV go to
# BUILD_DIR/console-artifacts (printed at the end). Exits non-zero on any failure.
# Safe to run again.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
mkdir -p "${1:-build}"
BUILD=$(cd "${1:-build}" && pwd)  # relative to the caller's directory
WEB=$ROOT/app/console/web
ARTIFACTS=$BUILD/console-artifacts

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
{ command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)  # as tests/interop
dpkg-query -W -f='${Status}' fonts-wqy-microhei 2>/dev/null | grep -q "ok installed" \
  || missing+=(fonts-wqy-microhei)  # the page speaks Chinese: without a CJK font, boxes
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci wipes node_modules: run it only when package-lock.json changed since the last one.
npm_ci() {
  local dir=$1 stamp=$1/node_modules/.whistle-lock.sha256 sum
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    echo "== npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
  fi
}
npm_ci "$HERE"
echo "== building the page (app/console/web/dist)"
if [ -x "$WEB/build.sh" ]; then
  "$WEB/build.sh" >/dev/null  # the page's own: npm ci when its lock changed, npm run build
else
  npm_ci "$WEB"
  (cd "$WEB" && npm run build --silent)
fi
echo "== building whistled, whistlectl, whistle-console in $BUILD"
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"${JOBS:-$(nproc)}" --target whistled whistlectl whistle-console

TMP=$(mktemp -d /tmp/whistle-console-test-XXXXXX)
cleanup() {
  # The tests stop what they start; this is the net under them (a crash, a signal).
  "$ROOT/app/federation.sh" stop --dir "$TMP/federation" >/dev/null 2>&1 || true
  if [ -s "$TMP/console.pid" ]; then kill "$(cat "$TMP/console.pid")" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

echo "== browser tests (Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'))"
status=0
(cd "$HERE" && WHISTLE_BUILD=$BUILD WHISTLE_CONSOLE_TMP=$TMP WHISTLE_CONSOLE_ARTIFACTS=$ARTIFACTS \
  node --test --test-concurrency=1 --test-reporter=spec console.test.mjs) || status=$?
if [ "$status" -ne 0 ]; then
  for log in "$TMP"/whistle-console.log "$TMP"/federation/*/whistled.log; do
    [ -s "$log" ] && { echo "--- last lines of ${log#"$TMP"/}"; tail -n 20 "$log"; }
  done
fi
echo "== console artifacts (screenshots, axe-core reports, CSV): $ARTIFACTS"
exit "$status"
