#!/usr/bin/env bash
# whistlectl against a fresh whistled: token keygen/mint, --token-file and
# WHISTLE_TOKEN, list with paging, count, topology, dispatch/keep/return/reject/
# supervise, --json, and error output.
set -euo pipefail
BUILD=$1
DATA=$(mktemp -d /tmp/whistle-cli-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ctl() { "$BUILD/cli/whistlectl" "$@"; }
fail() { echo "cli_test: $*"; exit 1; }
# The issuer: a key pair; the node trusts its public half.
ctl token keygen --dir "$DATA/issuer" --kid cli-test | grep -q "^kid          cli-test$" ||
  fail "keygen output"
[ "$(stat -c %a "$DATA/issuer/private.pem")" = 600 ] || fail "private key not mode 600"
ctl token keygen --dir "$DATA/issuer" --kid again 2>/dev/null && fail "keygen overwrote a key"
mint() { ctl token mint --key-file "$DATA/issuer/private.pem" --kid cli-test "$@"; }
"$BUILD/app/whistled" --listen 127.0.0.1:$PORT --metrics-listen "" --data-dir "$DATA/db" \
  --jwks-file "$DATA/issuer/jwks.json" 2>"$DATA/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
export WHISTLE_SERVER=127.0.0.1:$PORT
mint --user l --role leader --jurisdiction szs --ttl 15m >"$DATA/leader.token"
as_leader() { ctl --token-file "$DATA/leader.token" "$@"; }
for _ in $(seq 100); do as_leader topology >/dev/null 2>&1 && break; sleep 0.1; done

G=dwk-s01-c01-g001
T_GRID=$(mint --user w --role grid_worker --jurisdiction $G)
T_STREET=$(mint --user z --role staff --jurisdiction dwk-s01)
T_POLICE=$(mint --user d --role department --department dwk-s01-police_station)
as_grid() { WHISTLE_TOKEN=$T_GRID ctl "$@"; }
as_street() { WHISTLE_TOKEN=$T_STREET ctl "$@"; }
id_of() { sed -n 's/^ "id": "\(.*\)",$/\1/p'; }
for i in 1 2 3 4 5; do
  as_grid --json report --request-id c$i --category dispute.neighbour --severity serious \
    --grid $G --text "t$i" | id_of >>"$DATA/ids"
done
[ "$(sort -u "$DATA/ids" | wc -l)" = 5 ] || fail "want 5 distinct cases"
mapfile -t IDS <"$DATA/ids"
# 较大 (serious) goes to the township by graded response.
as_street get "${IDS[0]}" | grep -q "^owner       dwk-s01$" || fail "serious case not owned by the street"

as_street accept "${IDS[0]}" >/dev/null
as_street dispatch "${IDS[0]}" dwk-s01-police_station >/dev/null
WHISTLE_TOKEN=$T_POLICE ctl report-in "${IDS[0]}" |
  grep -q "^state       in_progress" || fail "report-in after dispatch"
as_street accept "${IDS[1]}" >/dev/null
as_street keep "${IDS[1]}" | grep -q "^state       in_progress" || fail "keep"
as_street return "${IDS[2]}" --reason "属区级事务" | grep -q "^owner       dwk$" || fail "return"
as_street reject "${IDS[3]}" --reason "重复上报" | grep -q "^state       rejected" || fail "reject"
as_leader supervise "${IDS[4]}" --note "督办" >/dev/null

# Paging: two per page, --all gathers every page.
page=$(as_leader list --page-size 2)
grep -q "^next page: --page-token" <<<"$page" || fail "no next page token"
all=$(as_leader list --page-size 2 --all)
[ "$(grep -c '^szs-' <<<"$all")" = 5 ] || fail "list --all did not return 5 cases"
as_leader list --state rejected | grep -q "${IDS[3]}" ||
  fail "list by state"
as_leader count | grep -qE '^rejected +1$' || fail "count"
as_leader topology dwk | grep -q "大武口区" || fail "topology"
as_leader --json count | python3 -c 'import json,sys; json.load(sys.stdin)' ||
  fail "--json is not JSON"

# Errors: a clear line on stderr, exit 1, nothing printed on stdout.
set +e
err=$(ctl count 2>&1 >/dev/null)
code=$?
[ $code = 1 ] && grep -q "^error: UNAUTHENTICATED: authorization: missing" <<<"$err" &&
  grep -q "^hint: .*--token-file" <<<"$err" || fail "no token: $code $err"
other=$(mktemp -d "$DATA/other-XXXX")
ctl token keygen --dir "$other/k" --kid cli-test >/dev/null
err=$(WHISTLE_TOKEN=$(ctl token mint --key-file "$other/k/private.pem" --kid cli-test --user l \
  --role leader --jurisdiction szs) ctl count 2>&1 >/dev/null)
grep -q "^error: UNAUTHENTICATED: token: signature does not verify" <<<"$err" || fail "foreign key: $err"
err=$(ctl --dev-user l --dev-role leader --dev-jurisdiction szs count 2>&1 >/dev/null)
grep -q "^error: UNAUTHENTICATED" <<<"$err" || fail "dev headers accepted by a token node: $err"
err=$(mint --user "a b" --role leader 2>&1)
[ $? = 2 ] && grep -q "^whistlectl: --user" <<<"$err" || fail "mint with a bad user: $err"
err=$(mint --user l --role mayor 2>&1)
[ $? = 2 ] && grep -q "unknown role" <<<"$err" || fail "mint with an unknown role: $err"
err=$(as_grid report --request-id bad --category dispute.neighbour --severity general --grid nowhere \
  --text x 2>&1 >/dev/null)
code=$?
set -e
[ $code = 1 ] || fail "bad report exit code $code"
grep -q "^error: INVALID_ARGUMENT: report.place.grid_id" <<<"$err" || fail "error text: $err"
# Backup: admin only; the checkpoint is a data dir (docs/operations.md, "Restore").
T_ADMIN=$(mint --user ops --role admin)
WHISTLE_TOKEN=$T_ADMIN ctl backup "$DATA/backup" | grep -q "^backup written to $DATA/backup: " ||
  fail "backup"
[ -f "$DATA/backup/WHISTLE-STORE" ] && [ -f "$DATA/backup/CURRENT" ] || fail "backup is no data dir"
err=$(as_street backup "$DATA/backup2" 2>&1 >/dev/null || true)
grep -q "^error: PERMISSION_DENIED" <<<"$err" || fail "backup by staff: $err"
[ ! -e "$DATA/backup2" ] || fail "a refused backup wrote files"
echo "cli_test: ok"
