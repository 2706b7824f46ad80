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

# refused CODE FIELD ARGS...: exit 1 and "error: CODE: FIELD" on stderr.
refused() {
  local code=$1 field=$2 err rc
  shift 2
  set +e
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  set -e
  [ $rc = 1 ] || fail "$* exited $rc (want 1): $err"
  grep -q "^error: $code: $field" <<<"$err" || fail "$*: want $code naming $field, got: $err"
}
rows() { grep -cE '^[^ ]+-d-[0-9]+ ' || true; }  # table rows, one per directive
count_listed() { county directive list --page-size 500 | rows; }

# A deadline more than 5 years ahead (a typo: seconds for ms, a digit too
# many) is refused at issue and at amend, and nothing changes.
DL=$(($(date +%s) * 1000 + 7200000))
ID2=$(county directive issue --title "路灯巡查" --deadline "$DL" --level grid --subtree $T |
  sed -n 's/^directive   //p')
[ -n "$ID2" ] || fail "second directive not issued"
before=$(count_listed)
refused INVALID_ARGUMENT draft.deadline_unix_ms \
  county directive issue --title far --deadline 99999999999999 --level grid --subtree $T
refused INVALID_ARGUMENT amend.deadline_unix_ms county directive amend "$ID2" --deadline 99999999999999
county directive get "$ID2" | grep -q "^state       active (version 1)$" || fail "refused amend changed $ID2"
[ "$(count_listed)" = "$before" ] || fail "refused issue listed a directive"

# A request id used again with another draft is ALREADY_EXISTS naming the
# first directive; the same draft again returns the first.
issue_req() {
  county directive issue --request-id same-1 --title "$1" --deadline "$DL" --level grid \
    --subtree $T
}
ID3=$(issue_req A | sed -n 's/^directive   //p')
[ -n "$ID3" ] || fail "request-id issue"
[ "$(issue_req A | sed -n 's/^directive   //p')" = "$ID3" ] || fail "retry got another directive"
before=$(count_listed)
refused ALREADY_EXISTS "request_id: \"same-1\" .*$ID3" issue_req B-other
[ "$(count_listed)" = "$before" ] || fail "reused request id issued a directive"

# Inbox page tokens: the ones the node gives out page on; garbage is refused.
page=$(grid $G1 directive inbox --page-size 1)
tok=$(sed -n 's/^next page: --page-token //p' <<<"$page")
[ -n "$tok" ] || fail "inbox paging: $page"
[ "$(grid $G1 directive inbox --page-size 1 --page-token "$tok" | rows)" = 1 ] ||
  fail "inbox second page"
for bad in abc 9/x -1/a / 0/"$ID" 1/ "1/a b" 4/"$ID"; do
  refused INVALID_ARGUMENT "page_token: not a token this server issued" \
    grid $G1 directive inbox --page-token "$bad"
done

# Messages name what the caller sent: with a token, the role claim.
set +e
err=$(grid $G1 inbox summoned 2>&1 >/dev/null)
set -e
grep -q "^error: PERMISSION_DENIED: role: .*grid_worker" <<<"$err" || fail "summoned: $err"
if grep -q "x-whistle" <<<"$err"; then fail "names the dev header with a token: $err"; fi
ctl directive sign --help | grep -q -- "--note N .*the unit's receipt" || fail "sign --help"
if ctl directive sign --help | grep -q "case's history"; then fail "sign --help: case"; fi
echo "directive_cli_test: ok"
