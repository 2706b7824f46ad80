#!/usr/bin/env bash
# whistlectl assess and rank against a fresh whistled: a table and --json with
# the figures of two reports (one accepted, one escalated), a ranking, a
# department's own assessment, and refusals (unknown jurisdiction, unknown
# figure, a bad period, a grid worker) that name what is wrong.
set -euo pipefail
BUILD=$1
NAME=assess_cli_test
. "$(dirname "$0")/cli_node.sh"

G=dwk-s01-c01-g001
grid() { ctlas --user wang --role grid_worker --jurisdiction $G "$@"; }
community() { ctlas --user li --role staff --jurisdiction dwk-s01-c01 "$@"; }
county() { ctlas --user chen --role leader --jurisdiction dwk "$@"; }
police() { ctlas --user desk --role department --department dwk-s01-police_station "$@"; }
report() {
  grid report --request-id "$1" --category dispute.neighbour --severity general --grid $G \
    --text "漏水纠纷" | sed -n 's/^case        //p'
}
A=$(report r1)
B=$(report r2)
[ -n "$A" ] && [ -n "$B" ] || fail "no case ids"
community accept "$A" >/dev/null
community escalate "$B" --reason 上报 >/dev/null

county assess dwk-s01 --period day >"$DATA/table"
grep -q "^jurisdiction dwk-s01, " "$DATA/table" || fail "no heading: $(cat "$DATA/table")"
grep -Eq "^received +2$" "$DATA/table" || fail "received: $(cat "$DATA/table")"
grep -Eq "^responded +2$" "$DATA/table" || fail "responded: $(cat "$DATA/table")"
grep -Eq "^escalations_out +1$" "$DATA/table" || fail "escalations_out: $(cat "$DATA/table")"
grep -Eq "^response_rate +100.0% +2 +2$" "$DATA/table" || fail "rate: $(cat "$DATA/table")"

county assess dwk --json >"$DATA/json"
python3 - "$DATA/json" <<'PY' || fail "json: $(cat "$DATA/json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["subject_id"] == "dwk", r
assert int(r["counts"]["received"]) == 2, r
rates = {x["name"]: x for x in r["rates"]}
assert int(rates["response_rate"]["denominator"]) == 2, rates
PY

county rank dwk --by received --period week >"$DATA/rank"
grep -Eq "^1 +dwk-s01 .* 2$" "$DATA/rank" || fail "rank: $(cat "$DATA/rank")"
police assess --department dwk-s01-police_station >/dev/null || fail "a department for itself"

if county assess nowhere 2>"$DATA/err"; then fail "unknown jurisdiction accepted"; fi
grep -q "jurisdiction_id" "$DATA/err" || fail "unknown jurisdiction: $(cat "$DATA/err")"
if county rank dwk --by speed 2>"$DATA/err"; then fail "unknown figure accepted"; fi
grep -q "figure" "$DATA/err" || fail "unknown figure: $(cat "$DATA/err")"
if county assess dwk --period year 2>"$DATA/err"; then fail "--period year accepted"; fi
grep -q -- "--period" "$DATA/err" || fail "bad period: $(cat "$DATA/err")"
if county assess dwk --from 2026-13-01 --to 2026-12-01 2>"$DATA/err"; then fail "bad date"; fi
grep -q -- "--from" "$DATA/err" || fail "bad date: $(cat "$DATA/err")"
if grid assess $G 2>"$DATA/err"; then fail "a grid worker was answered"; fi
grep -qi "permission" "$DATA/err" || fail "grid worker: $(cat "$DATA/err")"
echo "$NAME: ok"
