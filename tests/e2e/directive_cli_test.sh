#!/usr/bin/env bash
# whistlectl directive verbs against a fresh whistled: issue to a township's
# grids, inbox, sign, complete, progress per level, targets with paging,
# amend and cancel seen in the inbox, --json, and refusals on stderr.
set -euo pipefail
BUILD=$1
DATA=$(mktemp -d /tmp/whistle-dcli-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ctl() { "$BUILD/cli/whistlectl" "$@"; }
# The issuer: a key pair; the node trusts its public half; each call below
# mints a token for the identity its leading flags name.
ctl token keygen --dir "$DATA/issuer" --kid t >/dev/null
mint() { ctl token mint --key-file "$DATA/issuer/private.pem" --kid t --ttl 1h "$@"; }
ctlas() {
  local id=()
  while [ $# -gt 0 ]; do
    case $1 in
      --user | --role | --jurisdiction | --department) id+=("$1" "$2"); shift 2 ;;
      *) break ;;
    esac
  done
  WHISTLE_TOKEN=$(mint "${id[@]}") ctl "$@"
}
"$BUILD/app/whistled" --listen 127.0.0.1:$PORT --metrics-listen "" --data-dir "$DATA/db" \
  --jwks-file "$DATA/issuer/jwks.json" 2>"$DATA/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
export WHISTLE_SERVER=127.0.0.1:$PORT
for _ in $(seq 100); do ctlas --user p --role leader --jurisdiction szs topology >/dev/null 2>&1 && break; sleep 0.1; done
fail() { echo "directive_cli_test: $*"; exit 1; }

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
