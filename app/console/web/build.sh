#!/usr/bin/env bash
# Builds the leaders' console page into app/console/web/dist (what whistle-console serves
# with --assets). Installs Node.js and npm from apt when missing and the packages pinned in
# package-lock.json (npm ci, only when the lock file changed since the last install). Safe to
# run again.
set -euo pipefail
WEB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! { command -v node && command -v npm; } >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi
stamp=$WEB/node_modules/.whistle-lock.sha256
sum=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$sum" >"$stamp"
fi
(cd "$WEB" && npm run build --silent)
echo "$WEB/dist"
