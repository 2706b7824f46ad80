#!/usr/bin/env bash
# The README's main job as a test: app/scenario.sh through whistlectl only,
# across a local federation (the default) and in one process; checks what a
# user reads at the end.
set -euo pipefail
BUILD=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)

check_common() {
  grep -q "^state       evaluated" <<<"$out" || fail "case did not end evaluated"
  grep -q "^satisfaction 5/5" <<<"$out" || fail "no 5/5 rating"
  grep -qE '^3 .* escalate +accepted +accepted +dwk-s01 ' <<<"$out" || fail "escalation row wrong"
  grep -qE '^evaluated +1$' <<<"$out" || fail "count of evaluated cases wrong"
}
fail() { echo "$out"; echo "demo_test ($mode): $*"; exit 1; }

mode=one-process
out=$(WHISTLE_DEMO=one-process WHISTLE_PORT=auto "$SRC/app/scenario.sh" "$BUILD" 2>&1) || fail "exit $?"
check_common
rows=$(grep -cE '^[0-9]+ +[0-9]{4}-' <<<"$out")
[ "$rows" = 26 ] || fail "history rows: $rows, want 11 + 11 + 4"

mode=federation
out=$(WHISTLE_PORT=auto "$SRC/app/scenario.sh" "$BUILD" 2>&1) || fail "exit $?"
check_common
rows=$(grep -cE '^[0-9]+ +[0-9]{4}-' <<<"$out")
[ "$rows" = 26 ] || fail "history rows: $rows, want 11 on the street's node + 11 on the county's + 4"
grep -q "^copy        read-only here; owned on node szs" <<<"$out" || fail "no read-only copy of the city's case"
grep -qE "^dwk-s01 +dwks01 " <<<"$out" || fail "launcher table lacks the street's node"
echo "demo_test: ok"
