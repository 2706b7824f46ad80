#!/usr/bin/env bash
# whistlectl directive verbs against a fresh whistled: issue to a township's
# grids, inbox, sign, complete, progress per level, targets with paging,
# amend and cancel seen in the inbox, --json, and refusals on stderr.
set -euo pipefail
BUILD=$1
NAME=directive_cli_test
. "$(dirname "$0")/cli_node.sh"

T=dwk-s01
G1=dwk-s01-c01-g001
G2=dwk-s01-c01-g002
county() { ctlas --user dwk.leader --role leader --jurisdiction dwk "$@"; }
grid() { local g=$1; shift; ctlas --user "w.$g" --role grid_worker --jurisdiction "$g" "$@"; }

out=$(county directive issue --title "燃气安全检查" --text "逐户检查" --deadline +2h --level grid --subtree $T)
ID=$(sed -n 's/^directive   //p' <<<"$out")
[ -n "$ID" ] || fail "no directive id in: $out"
TOTAL=$(sed -n 's/^receipts    \([0-9]*\) .*/\1/p' <<<"$out")
[ "$TOTAL" -gt 2 ] || fail "want receipts for every grid of $T, got $TOTAL"

grid $G1 directive inbox | grep -qE "^$ID +1 active +pending" || fail "inbox of $G1"
grid $G1 directive sign "$ID" --note 收到 | grep -q "^receipt     signed" || fail "sign"
grid $G2 directive complete "$ID" --note 已检查 | grep -q "^receipt     done" || fail "complete"
county directive progress "$ID" | grep -qE "^dwk .* $TOTAL +2 +1 +0 " || fail "county progress"
county directive progress "$ID" --jurisdiction-id $T | grep -qE "^$T .* $TOTAL +2 +1 " ||
  fail "township progress"
county directive list | grep -q "^$ID .* 1/$TOTAL " || fail "list"
page=$(county directive targets "$ID" --state pending --page-size 2)
grep -q "^next page: --page-token" <<<"$page" || fail "targets paging"
[ "$(county directive targets "$ID" --state pending --page-size 2 --all | grep -c "pending")" = $((TOTAL - 2)) ] ||
  fail "targets --all"
county directive amend "$ID" --deadline +3h | grep -q "(version 2)" || fail "amend"
county --json directive cancel "$ID" --reason 调整 | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["state"] == "DIRECTIVE_STATE_CANCELLED" and d["version"] == "3", d' || fail "cancel --json"
grid $G1 directive inbox | grep -qE "^$ID +3 cancelled +signed" || fail "inbox after cancel"

# Refusals: one line on stderr naming the field, exit 1.
set +e
err=$(county directive issue --title x --deadline +1h --level grid --subtree hn 2>&1 >/dev/null)
code=$?
set -e
[ $code = 1 ] || fail "outside subtree exit code $code"
grep -q "^error: PERMISSION_DENIED: draft.targets.level.subtree_id" <<<"$err" || fail "error: $err"
set +e
err=$(grid $G1 directive sign "$ID" --unit $G2 2>&1 >/dev/null)
set -e
grep -q "^error: PERMISSION_DENIED: unit_id" <<<"$err" || fail "sign for another unit: $err"
echo "directive_cli_test: ok"
