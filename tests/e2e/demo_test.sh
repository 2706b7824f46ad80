#!/usr/bin/env bash
# The README's main job as a test: app/scenario.sh against a fresh whistled,
# through whistlectl only; checks what a user reads at the end.
set -euo pipefail
BUILD=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
out=$(WHISTLE_PORT=auto "$SRC/app/scenario.sh" "$BUILD" 2>&1) || { echo "$out"; exit 1; }
fail() { echo "$out"; echo "demo_test: $*"; exit 1; }
grep -q "^state       evaluated" <<<"$out" || fail "case did not end evaluated"
grep -q "^satisfaction 5/5" <<<"$out" || fail "no 5/5 rating"
rows=$(grep -cE '^[0-9]+ +[0-9]{4}-' <<<"$out")
[ "$rows" = 11 ] || fail "history has $rows rows, want 11"
grep -qE '^3 .* escalate +accepted +accepted +dwk-s01 ' <<<"$out" || fail "escalation row wrong"
grep -qE '^evaluated +1$' <<<"$out" || fail "count of evaluated cases wrong"
echo "demo_test: ok"
