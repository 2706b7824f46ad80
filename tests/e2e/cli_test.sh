#!/usr/bin/env bash
# whistlectl against a fresh whistled: list with paging, count, topology,
# dispatch/keep/return/reject/supervise, --json, and error output.
set -euo pipefail
BUILD=$1
DATA=$(mktemp -d /tmp/whistle-cli-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/app/whistled" --listen 127.0.0.1:$PORT --metrics-listen "" --data-dir "$DATA/db" 2>"$DATA/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
export WHISTLE_SERVER=127.0.0.1:$PORT
ctl() { "$BUILD/cli/whistlectl" "$@"; }
for _ in $(seq 100); do ctl --user p --role leader --jurisdiction szs topology >/dev/null 2>&1 && break; sleep 0.1; done
fail() { echo "cli_test: $*"; exit 1; }

G=dwk-s01-c01-g001
as_grid() { ctl --user w --role grid_worker --jurisdiction $G "$@"; }
as_street() { ctl --user z --role staff --jurisdiction dwk-s01 "$@"; }
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
ctl --user d --role department --department dwk-s01-police_station report-in "${IDS[0]}" |
  grep -q "^state       in_progress" || fail "report-in after dispatch"
as_street accept "${IDS[1]}" >/dev/null
as_street keep "${IDS[1]}" | grep -q "^state       in_progress" || fail "keep"
as_street return "${IDS[2]}" --reason "属区级事务" | grep -q "^owner       dwk$" || fail "return"
as_street reject "${IDS[3]}" --reason "重复上报" | grep -q "^state       rejected" || fail "reject"
ctl --user l --role leader --jurisdiction szs supervise "${IDS[4]}" --note "督办" >/dev/null

# Paging: two per page, --all gathers every page.
page=$(ctl --user l --role leader --jurisdiction szs list --page-size 2)
grep -q "^next page: --page-token" <<<"$page" || fail "no next page token"
all=$(ctl --user l --role leader --jurisdiction szs list --page-size 2 --all)
[ "$(grep -c '^szs-' <<<"$all")" = 5 ] || fail "list --all did not return 5 cases"
ctl --user l --role leader --jurisdiction szs list --state rejected | grep -q "${IDS[3]}" ||
  fail "list by state"
ctl --user l --role leader --jurisdiction szs count | grep -qE '^rejected +1$' || fail "count"
ctl --user l --role leader --jurisdiction szs topology dwk | grep -q "大武口区" || fail "topology"
ctl --user l --role leader --jurisdiction szs --json count | python3 -c 'import json,sys; json.load(sys.stdin)' ||
  fail "--json is not JSON"

# Errors: a clear line on stderr, exit 1, nothing printed on stdout.
set +e
err=$(as_grid report --request-id bad --category dispute.neighbour --grid nowhere --text x 2>&1 >/dev/null)
code=$?
set -e
[ $code = 1 ] || fail "bad report exit code $code"
grep -q "^error: INVALID_ARGUMENT: report.place.grid_id" <<<"$err" || fail "error text: $err"
echo "cli_test: ok"
