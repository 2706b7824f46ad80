#!/usr/bin/env bash
# whistlectl watch and inbox against a fresh whistled: a live watch printing
# changes as they happen, a resume with --from after the last token (--json),
# a township refused another's subtree, refused tokens, a department's inbox
# (pending first, then reported in) and a grid worker's reports.
set -euo pipefail
BUILD=$1
NAME=watch_cli_test
. "$(dirname "$0")/cli_node.sh"

G=dwk-s01-c01-g001
grid() { ctlas --user wang --role grid_worker --jurisdiction $G "$@"; }
community() { ctlas --user li --role staff --jurisdiction dwk-s01-c01 "$@"; }
street() { ctlas --user zhao --role staff --jurisdiction dwk-s01 "$@"; }
police() { ctlas --user desk --role department --department dwk-s01-police_station "$@"; }
county() { ctlas --user chen --role leader --jurisdiction dwk "$@"; }

# A live watch started before anything happens prints the changes as they come.
county watch --max 4 --for-ms 20000 >"$DATA/live" &
WATCH=$!
sleep 0.5
report() {
  grid report --request-id "$1" --category dispute.neighbour --severity general --grid $G \
    --text "漏水纠纷" | sed -n 's/^case        //p'
}
A=$(report r1)
B=$(report r2)
[ -n "$A" ] && [ -n "$B" ] || fail "no case ids"
community accept "$A" >/dev/null
community escalate "$A" --reason 上报 >/dev/null
wait $WATCH || fail "watch exited $?"
grep -qE "^1 +.* case +$A +#1 +report +reported +dwk-s01-c01$" "$DATA/live" || fail "live: $(cat "$DATA/live")"
grep -qE "^4 +.* case +$A +#3 +escalate +accepted +dwk-s01$" "$DATA/live" || fail "live: $(cat "$DATA/live")"

# Resume after token 4 as JSON: the whistle and nothing before it.
street whistle "$A" dwk-s01-police_station dwk-s01-judicial_office >/dev/null
out=$(county --json watch --from 4 --max 1)
grep -q '"token":"5"' <<<"$out" || fail "resume: $out"
grep -q '"kind":"TRANSITION_KIND_WHISTLE"' <<<"$out" || fail "resume kind: $out"

# Refusals on stderr, exit 1.
if err=$(street watch --jurisdiction-id dwk-s02 2>&1); then fail "another township watched"; fi
grep -q "PERMISSION_DENIED" <<<"$err" || fail "$err"
if err=$(county watch --from 999 2>&1); then fail "future token accepted"; fi
grep -q "OUT_OF_RANGE: token 999 is ahead" <<<"$err" || fail "$err"
if err=$(county watch --from x1 2>&1); then fail "garbage token accepted"; fi
grep -q "INVALID_ARGUMENT: from_token" <<<"$err" || fail "$err"

# The police station's inbox: pending with its deadline, then reported in.
out=$(police inbox summoned)
grep -qE "^$A +yes +[0-9]{4}-" <<<"$out" || fail "inbox: $out"
police report-in "$A" >/dev/null
out=$(police inbox summoned --json)
grep -q "\"id\": \"$A\"" <<<"$out" || fail "inbox json: $out"
if grep -q '"pending": true' <<<"$out"; then fail "still pending: $out"; fi
if err=$(street inbox summoned 2>&1); then fail "staff read a department inbox"; fi
grep -q "PERMISSION_DENIED" <<<"$err" || fail "$err"

# The grid worker's own reports, paged.
out=$(grid inbox reported --page-size 1)
grep -q "^$A " <<<"$out" || fail "reported: $out"
grep -q "next page: --page-token" <<<"$out" || fail "no next page: $out"
out=$(grid inbox reported --all)
grep -q "^$B " <<<"$out" || fail "reported --all: $out"
echo "watch_cli_test: ok"
