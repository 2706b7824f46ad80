#!/usr/bin/env bash
# Installs the Node.js gRPC client libraries (npm, cached in node_modules here)
# and runs the interop scenario against BUILD_DIR/app/whistled.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)  # relative to the caller's directory
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi
[ -d node_modules/@grpc/grpc-js ] || npm install --silent --no-audit --no-fund >/dev/null
node scenario.mjs "$BUILD/app/whistled" ../../proto
