#!/usr/bin/env bash
# whistlectl notices against a fresh whistled on the test clock with a short
# policy: a case left unaccepted at the township (the escalation ceiling)
# shows in the county leader's table and --json with its notice count, the
# count rises after another period, and the case leaves once resolved; a grid
# worker and another county are refused; a bad page size is a usage error.
set -euo pipefail
BUILD=$1
NAME=notice_cli_test
DATA=$(mktemp -d "/tmp/whistle-$NAME-XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ctl() { "$BUILD/cli/whistlectl" "$@"; }
fail() { echo "$NAME: $*"; [ -f "$DATA/log" ] && tail -20 "$DATA/log"; exit 1; }
cat >"$DATA/policy.json" <<'JSON'
{"categories": [{"id": "dispute.neighbour", "name": "邻里纠纷"}],
 "ownership": [{"severity": "SEVERITY_GENERAL", "owner_level": "LEVEL_COMMUNITY"}],
 "limits": {"accept_seconds": 600, "accept_urgent_seconds": 600, "dispatch_seconds": 1200,
   "report_in_seconds": 1800, "report_in_emergency_seconds": 1800,
   "resolve_general_seconds": 3600, "resolve_serious_seconds": 3600,
   "resolve_major_seconds": 3600, "resolve_extraordinary_seconds": 3600,
   "verify_seconds": 7200, "evaluate_seconds": 10800}}
JSON
ctl token keygen --dir "$DATA/issuer" --kid t >/dev/null
mint() { ctl token mint --key-file "$DATA/issuer/private.pem" --kid t --ttl 1h "$@"; }
"$BUILD/app/whistled" --listen 127.0.0.1:$PORT --metrics-listen "" --data-dir "$DATA/db" \
  --jwks-file "$DATA/issuer/jwks.json" --policy-file "$DATA/policy.json" \
  --test-clock-start-ms=1750000000000 2>"$DATA/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
export WHISTLE_SERVER=127.0.0.1:$PORT TZ=UTC  # the table prints local time
G=dwk-s01-c01-g001
GRID_T=$(mint --user wang --role grid_worker --jurisdiction $G)
LEAD_T=$(mint --user chen --role leader --jurisdiction dwk)
OTHER_T=$(mint --user sun --role leader --jurisdiction pl)
STREET_T=$(mint --user zhao --role staff --jurisdiction dwk-s01)
ADMIN_T=$(mint --user ops --role admin)
for _ in $(seq 100); do WHISTLE_TOKEN=$LEAD_T ctl topology >/dev/null 2>&1 && break; sleep 0.1; done
lead() { WHISTLE_TOKEN=$LEAD_T ctl "$@"; }
street() { WHISTLE_TOKEN=$STREET_T ctl "$@"; }
advance() { WHISTLE_TOKEN=$ADMIN_T ctl clock advance "$1" >/dev/null; }
# Polls `lead notices` until its output matches the pattern (the timer runs on its own).
wait_notices() {
  for _ in $(seq 100); do
    out=$(lead notices) && grep -qE "$1" <<<"$out" && return 0
    sleep 0.1
  done
  fail "notices never showed /$1/: $out"
}

C=$(WHISTLE_TOKEN=$GRID_T ctl report --request-id n1 --category dispute.neighbour --severity general \
  --grid $G --text "噪音" | sed -n 's/^case        //p')
[ -n "$C" ] || fail "no case id"
out=$(lead notices)
grep -q "(no supervision notices)" <<<"$out" || fail "a notice before any deadline: $out"

advance 11m  # the community misses: up to the township, no notice
advance 11m  # the township misses: the county is noticed
wait_notices "^$C +2025-06-15 15:28:40 1 +accept +reported +dwk-s01 +general +dispute.neighbour$"
head -1 <<<"$out" | grep -q "^CASE .*NOTICED .*NOTICES .*MISSED .*STATE .*OWNER" || fail "header: $out"
json=$(lead notices dwk --json)
python3 - "$json" "$C" <<'PY' || fail "json: $json"
import json, sys
r = json.loads(sys.argv[1])
item, = r["items"]
assert item["case"]["id"] == sys.argv[2], item
assert item["notice_to_id"] == "dwk" and item["notices"] == 1, item
assert item["deadlines_missed"] == ["accept"], item
PY

advance 11m  # left alone another period: a second notice
wait_notices "^$C +2025-06-15 15:39:40 2 +accept "

# Refused: a grid worker, another county's leader (exit 1, nothing listed).
code=0; WHISTLE_TOKEN=$GRID_T ctl notices dwk >"$DATA/out" 2>"$DATA/err" || code=$?
[ $code = 1 ] && grep -q "PERMISSION_DENIED" "$DATA/err" || fail "grid worker: $code $(cat "$DATA/err")"
code=0; WHISTLE_TOKEN=$OTHER_T ctl notices dwk >"$DATA/out" 2>"$DATA/err" || code=$?
[ $code = 1 ] && grep -q "PERMISSION_DENIED" "$DATA/err" || fail "other county: $code $(cat "$DATA/err")"
code=0; lead notices --page-size abc >"$DATA/out" 2>"$DATA/err" || code=$?
[ $code = 2 ] && grep -qF -- '--page-size: want a whole number from 1 to 500, got "abc"' "$DATA/err" ||
  fail "bad page size: $code $(cat "$DATA/err")"
code=0; lead notices no-such-place >"$DATA/out" 2>"$DATA/err" || code=$?
[ $code = 1 ] && grep -q "INVALID_ARGUMENT: jurisdiction_id" "$DATA/err" ||
  fail "unknown jurisdiction: $code $(cat "$DATA/err")"
wait_notices "^$C .* 2 +accept "  # unchanged

# Accepted, kept and resolved by the township: gone.
street accept "$C" >/dev/null || fail "accept"
street keep "$C" >/dev/null || fail "keep"
street resolve "$C" --note "调解" >/dev/null || fail "resolve"
out=$(lead notices)
grep -q "(no supervision notices)" <<<"$out" || fail "still listed after resolve: $out"
echo "$NAME: ok"
