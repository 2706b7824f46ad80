#!/usr/bin/env bash
# whistlectl's command line as a new user meets it: an unknown verb, a missing
# --severity, numbers that do not parse, unknown flags and flags without their
# value are refused with exit 2 and a message naming the verb, flag or argument;
# `whistlectl --help` lists every verb and `VERB --help` (or -h) of each prints
# its usage without reading a token or contacting a node; `version` and
# `--version` print the version and git revision (as whistled --version does).
# Then, against a real node: a report without --severity stores nothing.
set -euo pipefail
BUILD=$1
NAME=cli_usage_test
CTL="$BUILD/cli/whistlectl"
fail() { echo "$NAME: $*"; exit 1; }
WORK=$(mktemp -d "/tmp/whistle-$NAME-XXXXXX")
LISTENER=
trap '[ -n "$LISTENER" ] && kill $LISTENER 2>/dev/null; rm -rf "$WORK"' EXIT

# A TCP listener standing in for a node: it counts the connections it gets, so
# a verb that should not contact a node is seen if it does.
python3 - "$WORK/port" "$WORK/connections" <<'EOF' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write("connection\n")
    c.close()
EOF
LISTENER=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
[ -s "$WORK/port" ] || fail "listener did not start"
: >"$WORK/connections"
# Every call below goes to the listener: a verb that dialled would be counted.
WHISTLE_SERVER=127.0.0.1:$(cat "$WORK/port")
export WHISTLE_SERVER
export WHISTLE_TOKEN=not-a-token
unset WHISTLE_TOKEN_FILE

# expect CODE TEXT ARGS...: whistlectl ARGS exits CODE and its stderr has TEXT (a
# fixed string) on one line.
expect() {
  local want=$1 text=$2
  shift 2
  local code=0
  "$CTL" "$@" >"$WORK/out" 2>"$WORK/err" || code=$?
  [ "$code" = "$want" ] || fail "whistlectl $*: exit $code, want $want: $(cat "$WORK/err")"
  grep -qF -- "$text" "$WORK/err" || fail "whistlectl $*: stderr lacks '$text': $(cat "$WORK/err")"
}

# An unknown verb is named as such, with the way to the list of verbs.
expect 2 'whistlectl: unknown verb "frobnicate"' frobnicate CASE-1
grep -qF "run \`whistlectl --help\`" "$WORK/err" || fail "unknown verb: no hint: $(cat "$WORK/err")"
grep -q "CASE missing" "$WORK/err" && fail "unknown verb still reads as a case verb: $(cat "$WORK/err")"
expect 2 'whistlectl: unknown verb "directive frobnicate"' directive frobnicate
expect 2 'whistlectl: unknown verb "inbox frobnicate"' inbox frobnicate
expect 2 'whistlectl: unknown flag --frobnicate' --frobnicate list

# report: --severity is required, never defaulted; so are the others.
REPORT=(report --request-id r1 --category dispute.neighbour --grid dwk-s01-c01-g001 --text 漏水)
expect 2 "whistlectl: report: --severity required" "${REPORT[@]}"
expect 2 "usage: whistlectl report" "${REPORT[@]}"
expect 2 "report: --text required" report --request-id r1 --category c --severity general --grid g
expect 2 "report: --request-id required" report --category c --severity general --grid g --text t
expect 2 '--severity: want general, serious, major or extraordinary, got "urgent"' \
  "${REPORT[@]}" --severity urgent
expect 2 "report: --severity needs a value" "${REPORT[@]}" --severity

# Numbers: whole, in range, no units, no overflow; the message names the flag or argument.
BIG=99999999999999999999
for bad in abc 10x -1 0 501 "$BIG" " 5" "+5" 1.5 ""; do
  expect 2 "--page-size: want a whole number from 1 to 500, got \"$bad\"" list --page-size "$bad"
done
for bad in great 0 6 -3 "$BIG" 4.5; do
  expect 2 "evaluate: SCORE: want a whole number from 1 to 5, got \"$bad\"" evaluate CASE-1 "$bad"
done
expect 2 "evaluate: SCORE missing" evaluate CASE-1
for bad in abc 0 -5 10x "$BIG"; do
  expect 2 "--timeout-ms: want a whole number from 1 to 86400000, got \"$bad\"" \
    --timeout-ms "$bad" count
done
expect 2 '--max: want a whole number from 0 to 1000000000, got "abc"' watch --max abc
expect 2 '--max: want a whole number from 0 to 1000000000, got "-1"' watch --max -1
expect 2 '--for-ms: want a whole number from 0 to 86400000, got "10s"' watch --for-ms 10s
expect 2 "--for-ms: want a whole number from 0 to 86400000, got \"$BIG\"" watch --for-ms "$BIG"
expect 2 '--page-size: want a whole number from 1 to 500, got "abc"' inbox summoned --page-size abc
expect 2 '--page-size: want a whole number from 1 to 500, got "10x"' inbox reported --page-size 10x
expect 2 '--page-size: want a whole number from 1 to 500, got "abc"' directive list --page-size abc
expect 2 '--page-size: want a whole number from 1 to 500, got "0"' directive inbox --page-size 0
expect 2 '--page-size: want a whole number from 1 to 500, got "501"' notices dwk --page-size 501
expect 2 "--page-size: want a whole number from 1 to 500, got \"$BIG\"" \
  directive targets D-1 --page-size "$BIG"
for bad in "+${BIG}d" "$BIG" "+10x" "+-5m" 12abc; do
  expect 2 "--deadline: want +30m, +2h, +3d, 2026-12-01T18:00 or unix ms, got \"$bad\"" \
    directive issue --title t --deadline "$bad" --level grid --subtree dwk
done
expect 2 "--deadline: want" directive amend D-1 --deadline "+${BIG}h"
# An empty value is an error naming the flag, not "unchanged" or "every state".
expect 2 "--deadline: want" directive amend D-1 --deadline ""
expect 2 "--state: want pending, signed or done" directive targets D-1 --state ""
expect 2 'MS: want a whole number from 0 to' clock set abc
expect 2 "MS: want a whole number from 0 to" clock set "$BIG"
expect 2 'DURATION: want a whole number and a unit' clock advance 10x
"$CTL" token keygen --dir "$WORK/issuer" --kid t >/dev/null
for bad in "${BIG}h" 10x abc 0s ""; do
  expect 2 "--ttl: want 1s..30d" token mint --key-file "$WORK/issuer/private.pem" --kid t --user u \
    --role leader --ttl "$bad"
done

# Unknown flags, and known flags given without their value, are named.
expect 2 "list: unknown flag --frobnicate" list --frobnicate
expect 2 "list: --page-size needs a value" list --page-size
# A flag given twice is refused naming it, never silently the first or the last one
# (a repeatable flag, --attachment, still needs its value).
expect 2 "list: --page-size given twice" list --page-size 5 --page-size 6
grep -q "needs a value" "$WORK/err" && fail "a repeated flag reads as one missing its value"
expect 2 "list: --state given twice" list --state closed --state reported
expect 2 "list: --all given twice" list --all --all
expect 2 "report: --severity given twice" "${REPORT[@]}" --severity general --severity major
expect 2 "report: --attachment needs a value" "${REPORT[@]}" --severity general \
  --attachment a --attachment
expect 2 "whistlectl: --json given twice" --json --json count
expect 2 "count: --json given twice" --json count --json
expect 2 "whistlectl: --server given twice" --server 127.0.0.1:1 --server 127.0.0.1:2 count
expect 2 "--timeout-ms given twice" --timeout-ms 5 --timeout-ms 6 count
expect 2 "assess: --at given twice" assess dwk --at 2026-11-01 --at 2026-11-02
expect 2 "assess: --period given twice" assess --period day --period week dwk
expect 2 "rank: --by given twice" rank dwk --by received --by returns
expect 2 "directive list: --page-size given twice" directive list --page-size 5 --page-size 6
expect 2 "clock advance: --json given twice" clock advance 1s --json --json
# Dates: a day that does not exist is named as such, not as a bad number.
for bad in 2026-13-45 2026-02-30 yesterday 0; do
  expect 2 "--at: want a date YYYY-MM-DD or unix ms, got \"$bad\"" assess dwk --at "$bad"
done
grep -q "whole number" "$WORK/err" && fail "--at: a date reads as a number: $(cat "$WORK/err")"
expect 2 '--from: want a date YYYY-MM-DD or unix ms, got "2026-00-01"' \
  rank dwk --by received --from 2026-00-01 --to 2026-01-31
# An empty value is a bad value naming its flag, never read as the flag left out
# (which would answer for the current month, or every state).
expect 2 '--at: want a date YYYY-MM-DD or unix ms, got ""' assess dwk-s01 --at ""
expect 2 '--at: want a date YYYY-MM-DD or unix ms, got ""' rank dwk --by received --at ""
expect 2 '--from: want a date YYYY-MM-DD or unix ms, got ""' assess dwk-s01 --from "" --to ""
expect 2 '--to: want a date YYYY-MM-DD or unix ms, got ""' assess dwk-s01 --from 2026-11-01 --to ""
expect 2 '--to: needed with --from' assess dwk-s01 --from ""
expect 2 '--period: give --period/--at or --from/--to, not both' \
  assess dwk-s01 --from 2026-11-01 --to 2026-11-30 --at ""
expect 2 '--period: want day, week or month, got ""' assess dwk-s01 --period ""
expect 2 '--state: unknown state ""' list --state ""
expect 2 '--page-size: want a whole number from 1 to 500, got ""' inbox summoned --page-size ""
expect 2 '--max: want a whole number from 0 to 1000000000, got ""' watch --max ""
expect 2 '--timeout-ms: want a whole number from 1 to 86400000, got ""' --timeout-ms "" count
expect 2 'MS: want a whole number from 0 to' clock set ""
expect 2 'DURATION: want a whole number and a unit' clock advance ""
expect 2 "--deadline: want" directive issue --title t --deadline "" --level grid --subtree dwk
expect 2 "get: unexpected argument CASE-2" get CASE-1 CASE-2
expect 2 "accept: unknown flag --frobnicate" accept CASE-1 --frobnicate
expect 2 "accept: CASE missing" accept --note x
expect 2 "whistle: unknown flag --frobnicate" whistle CASE-1 dwk-s01-police_station --frobnicate
expect 2 "whistle: DEPT missing" whistle CASE-1
expect 2 "dispatch: DEPARTMENT missing" dispatch CASE-1 --note x
expect 2 "count: unknown flag --state" count --state closed
expect 2 "topology: unexpected argument b" topology a b
expect 2 "health: unexpected argument now" health now
expect 2 "watch: unknown flag --frobnicate" watch --frobnicate
expect 2 "inbox summoned: unknown flag --frobnicate" inbox summoned --frobnicate
expect 2 "directive list: unknown flag --frobnicate" directive list --frobnicate
expect 2 "directive get: unexpected argument D-2" directive get D-1 D-2
expect 2 "token mint: unknown flag --frobnicate" token mint --frobnicate
expect 2 "version: unexpected argument now" version now
# What an error quotes from the command line reaches the terminal escaped.
expect 2 'get: unexpected argument b\x1b[2J' get a $'b\e[2J'
expect 2 'unknown verb "\x1b[31mred"' $'\e[31mred'

# A token file that holds no token (a line break inside, as in a JSON file) is
# named, not sent (gRPC would abort the process on the header).
printf '{"token":\n"x"}\n' >"$WORK/not-a-token.json"
expect 2 "--token-file: not a token" --token-file "$WORK/not-a-token.json" count
WHISTLE_TOKEN=$'a\nb' expect 2 "WHISTLE_TOKEN: not a token" count
expect 2 "--dev-user: printable ASCII only" --dev-user $'a\rb' --dev-role leader count

# None of the above reached the listener (no node contacted on a usage error).
[ ! -s "$WORK/connections" ] || fail "a refused command line contacted the node"

# whistlectl --help lists every verb, one line each; each verb's --help and -h
# print its usage (exit 0) without a token or a node (the token file named is
# not there: reading it would fail).
export WHISTLE_TOKEN_FILE="$WORK/no-such-token"
"$CTL" --help >"$WORK/verbs" || fail "whistlectl --help: exit $?"
sed -n '/^Verbs:$/,/^$/p' "$WORK/verbs" | sed -n 's/^  \([^ ].*[^ ]\)  \+[^ ].*$/\1/p' \
  | sed 's/ \+$//' >"$WORK/names"
mapfile -t VERBS <"$WORK/names"
[ "${#VERBS[@]}" -ge 30 ] || fail "whistlectl --help lists ${#VERBS[@]} verbs: $(cat "$WORK/verbs")"
for want in report accept evaluate list watch "inbox summoned" "directive issue" "token mint" \
  version; do
  grep -qxF "$want" "$WORK/names" || fail "whistlectl --help does not list $want"
done
for verb in "${VERBS[@]}"; do
  read -r -a words <<<"$verb"
  for flag in --help -h; do
    code=0
    "$CTL" "${words[@]}" "$flag" >"$WORK/help" 2>"$WORK/err" || code=$?
    [ "$code" = 0 ] || fail "whistlectl $verb $flag: exit $code: $(cat "$WORK/err")"
    grep -q "^usage: whistlectl $verb" "$WORK/help" ||
      fail "whistlectl $verb $flag: no usage line: $(cat "$WORK/help")"
  done
  # Its one-line summary in the list is the sentence its help prints.
  summary=$(grep -F "  $verb  " "$WORK/verbs" | head -1 | sed 's/^  .\{20\}  //')
  grep -qF "$summary." "$WORK/help" || fail "whistlectl $verb --help lacks its summary '$summary'"
done
# Help also before the verb's arguments, and for a group.
"$CTL" evaluate CASE-1 great --help | grep -q "^usage: whistlectl evaluate CASE SCORE" ||
  fail "help after arguments"
"$CTL" help report | grep -q "^usage: whistlectl report" || fail "whistlectl help report"
"$CTL" directive --help | grep -q "^  directive issue " || fail "whistlectl directive --help"
code=0
"$CTL" >/dev/null 2>"$WORK/err" || code=$?
[ "$code" = 2 ] || fail "no verb: exit $code"
grep -q "^Verbs:" "$WORK/err" || fail "no verb: no list of verbs: $(cat "$WORK/err")"
[ ! -s "$WORK/connections" ] || fail "a --help contacted the node"
# The listener does see a verb that dials (so the checks above can fail).
WHISTLE_TOKEN_FILE='' "$CTL" --timeout-ms 2000 count >/dev/null 2>&1 || true
[ -s "$WORK/connections" ] || fail "the listener saw no connection from count"

# version and --version: the version and the git revision, the same as whistled's.
v=$("$CTL" version) || fail "whistlectl version: exit $?"
[[ "$v" =~ ^whistlectl\ [0-9]+\.[0-9]+\.[0-9]+\ \(revision\ [0-9a-zA-Z._-]+\)$ ]] ||
  fail "whistlectl version: $v"
[ "$("$CTL" --version)" = "$v" ] || fail "--version differs from version"
d=$("$BUILD/app/whistled" --version) || fail "whistled --version: exit $?"
[ "${d#whistled }" = "${v#whistlectl }" ] ||
  fail "whistled says '$d', whistlectl says '$v' (one of them not rebuilt since a commit?)"

# Against a real node: a report without --severity is refused before anything is
# stored; the same report with it is stored (so the count can tell).
kill $LISTENER 2>/dev/null
LISTENER=
rm -rf "$WORK"
unset WHISTLE_TOKEN_FILE WHISTLE_SERVER
# shellcheck source=cli_node.sh
. "$(dirname "$0")/cli_node.sh"  # its own data dir, removed on exit
cases() {
  ctlas --user p --role leader --jurisdiction szs --json count |
    python3 -c 'import json,sys; print(sum(int(r.get("count", 0)) for r in json.load(sys.stdin).get("counts", [])))'
}
grid() { ctlas --user wang --role grid_worker --jurisdiction dwk-s01-c01-g001 "$@"; }
before=$(cases)
code=0
grid "${REPORT[@]}" >"$DATA/out" 2>"$DATA/err" || code=$?
[ "$code" = 2 ] || fail "report without --severity: exit $code: $(cat "$DATA/err")"
grep -qF "report: --severity required" "$DATA/err" || fail "report without --severity: $(cat "$DATA/err")"
[ "$(cases)" = "$before" ] || fail "a report without --severity stored a case"
grid "${REPORT[@]}" --severity general | grep -q "^case " || fail "the same report with --severity"
[ "$(cases)" = $((before + 1)) ] || fail "count did not see the stored report"
# The bounds themselves are numbers the node gets.
leader() { ctlas --user p --role leader --jurisdiction szs "$@"; }
for n in 1 500; do
  leader --timeout-ms 86400000 list --page-size $n | grep -q "^szs-" || fail "list --page-size $n"
done
code=0
leader --timeout-ms 1 list >/dev/null 2>&1 || code=$?  # may expire (1), but is no usage error
[ "$code" != 2 ] || fail "--timeout-ms 1 refused"
echo "$NAME: ok"
