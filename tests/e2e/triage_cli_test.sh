#!/usr/bin/env bash
# whistlectl's triage and rating verbs against a fresh whistled: transfer down
# and sideways with a corrected category, refuse (退单) and re-dispatch,
# evaluate --on-behalf, and the anti-gaming refusals (the exit code, the
# message, and nothing changed).
set -euo pipefail
BUILD=$1
NAME=triage_cli_test
. "$(dirname "$0")/cli_node.sh"

G=dwk-s01-c01-g001
grid() { ctlas --user wang --role grid_worker --jurisdiction $G "$@"; }
community() { ctlas --user li --role staff --jurisdiction dwk-s01-c01 "$@"; }
community2() { ctlas --user he --role staff --jurisdiction dwk-s01-c02 "$@"; }
street() { ctlas --user zhao --role staff --jurisdiction dwk-s01 "$@"; }
street2() { ctlas --user qian --role staff --jurisdiction dwk-s01 "$@"; }
police() { ctlas --user desk --role department --department dwk-s01-police_station "$@"; }
report() {
  grid report --request-id "$1" --category dispute.neighbour --severity "$2" --grid $G \
    --text "纠纷" | sed -n 's/^case        //p'
}

# A serious case is the street's: handed down to a community, then sideways, re-categorised.
A=$(report t1 serious)
[ -n "$A" ] || fail "no case id"
street transfer "$A" --to dwk-s01-c01 --reason "社区处置" | grep -q "^owner       dwk-s01-c01$" ||
  fail "transfer down"
out=$(community transfer "$A" --to dwk-s01-c02 --category dispute.family --reason "家事" )
grep -q "^owner       dwk-s01-c02$" <<<"$out" || fail "transfer sideways: $out"
grep -q "^category    dispute.family (serious)$" <<<"$out" || fail "category not corrected: $out"
community2 history "$A" | grep -q "transfer .*category dispute.neighbour -> dispute.family" ||
  fail "history lacks the category change"
# Refused: up is escalate's, and a reason is required; nothing changes.
before=$(community2 --json get "$A")
set +e
err=$(community2 transfer "$A" --to dwk-s01 --reason up 2>&1); code=$?
set -e
[ $code -ne 0 ] && grep -q "INVALID_ARGUMENT: command.transfer.to_jurisdiction_id" <<<"$err" ||
  fail "transfer up: $code $err"
set +e
err=$(community2 transfer "$A" --to dwk-s01-c01 2>&1); code=$?
set -e
grep -q "command.transfer.reason: required" <<<"$err" || fail "transfer without reason: $err"
[ "$(community2 --json get "$A")" = "$before" ] || fail "a refused transfer changed the case"

# Dispatched, refused by the desk (退单), re-dispatched.
B=$(report t2 serious)
street accept "$B" >/dev/null
street dispatch "$B" dwk-s01-police_station >/dev/null
out=$(police refuse "$B" --reason "非治安案件")
grep -q "^state       accepted$" <<<"$out" || fail "refuse: $out"
grep -q "^refused     dwk-s01-police_station" <<<"$out" || fail "refusal not shown: $out"
street dispatch "$B" dwk-s01-judicial_office | grep -q "^state       dispatched$" ||
  fail "re-dispatch"

# Anti-gaming: the street's staff handled C; they neither verify nor rate it.
C=$(report t3 serious)
street accept "$C" >/dev/null
street keep "$C" >/dev/null
street resolve "$C" >/dev/null
set +e
err=$(street verify "$C" 2>&1); code=$?
set -e
[ $code -ne 0 ] && grep -q "PERMISSION_DENIED: anti-gaming: user \"zhao\" handled case" <<<"$err" ||
  fail "handler verified: $code $err"
grid verify "$C" >/dev/null
street close "$C" >/dev/null
# A grid worker's report is rated by that grid worker, nobody in its place.
set +e
err=$(street2 evaluate "$C" 5 --on-behalf 2>&1); code=$?
set -e
[ $code -ne 0 ] && grep -q "who rates it for the resident" <<<"$err" || fail "staff rated: $err"
# That grid worker gives the resident's own answer: --on-behalf from it is refused
# naming the field, not dropped, and the case stays unrated (the next rating lands).
set +e
err=$(grid evaluate "$C" 4 --on-behalf 2>&1); code=$?
set -e
[ $code -ne 0 ] &&
  grep -q "PERMISSION_DENIED: anti-gaming: command.evaluate.on_behalf: grid worker" <<<"$err" ||
  fail "the reporting grid worker rated on behalf: $code $err"
grid evaluate "$C" 4 | grep -q "^satisfaction 4/5$" || fail "the reporter's rating"

# A call the street's desk took in: other staff rate on the resident's behalf only.
D=$(ctlas --user xu --role staff --jurisdiction dwk-s01 report --request-id t4 \
  --category dispute.neighbour --severity serious --grid $G --text "来电" |
  sed -n 's/^case        //p')
street accept "$D" >/dev/null
street keep "$D" >/dev/null
street resolve "$D" >/dev/null
grid verify "$D" >/dev/null
street close "$D" >/dev/null
set +e
err=$(street2 evaluate "$D" 5 2>&1); code=$?
set -e
[ $code -ne 0 ] && grep -q "must set on_behalf" <<<"$err" || fail "staff rated: $err"
street2 evaluate "$D" 3 --on-behalf | grep -q "^satisfaction 3/5 (rated by staff on the resident's behalf)$" ||
  fail "on-behalf rating"
echo "$NAME: ok"
