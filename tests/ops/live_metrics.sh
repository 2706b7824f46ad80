#!/usr/bin/env bash
# Scrapes a live whistled right after start-up (the bounded case-flow series
# exist at 0 before any case) and after a scenario that exercises every metric
# family (including a missed accept deadline and a report-in no-show), then
# checks the output with `promtool check metrics` and against docs/metrics.md.
# Usage: tests/ops/live_metrics.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DATA=$(mktemp -d /tmp/whistle-metrics-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
MPORT=$(free_port)
cat >"$DATA/policy.json" <<'JSON'
{"categories":[{"id":"dispute.neighbour","name":"邻里纠纷"}],
 "ownership":[{"severity":"SEVERITY_GENERAL","owner_level":"LEVEL_COMMUNITY"}],
 "limits":{"accept_seconds":1,"report_in_seconds":1}}
JSON
ctl() { "$BUILD/cli/whistlectl" "$@"; }
ctl token keygen --dir "$DATA/issuer" --kid metrics >/dev/null
# as USER ROLE JURISDICTION VERB...: one call with a token of the issuer.
as() {
  local token
  token=$(ctl token mint --key-file "$DATA/issuer/private.pem" --kid metrics --user "$1" \
    --role "$2" --jurisdiction "$3")
  shift 3
  WHISTLE_TOKEN=$token ctl "$@"
}
"$BUILD/app/whistled" --listen 127.0.0.1:$PORT --metrics-listen 127.0.0.1:$MPORT \
  --data-dir "$DATA/db" --policy-file "$DATA/policy.json" --timer-interval-ms 100 \
  --jwks-file "$DATA/issuer/jwks.json" 2>"$DATA/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
export WHISTLE_SERVER=127.0.0.1:$PORT
for _ in $(seq 100); do as p leader szs topology >/dev/null 2>&1 && break; sleep 0.1; done
scrape() {
  python3 - "$MPORT" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode(), end="")
PY
}

# Before any case: every bounded case-flow series exists at 0 (rate() sees the first event).
scrape >"$DATA/start.txt"
zero() {  # zero FAMILY WANT: FAMILY has WANT series, each 0
  local n
  n=$(grep -c "^$1{" "$DATA/start.txt" || true)
  [ "$n" = "$2" ] || { echo "at start-up: $1 has $n series, want $2"; grep "^$1" "$DATA/start.txt"; exit 1; }
  if grep "^$1{" "$DATA/start.txt" | grep -qv ' 0$'; then
    echo "at start-up: $1 not 0"; grep "^$1{" "$DATA/start.txt"; exit 1
  fi
}
# 5 levels; 17 kinds x 1 top-level category of the policy; 5 deadlines; 6 open states.
zero whistle_case_transitions_total 85
zero whistle_case_overdue_total 25
zero whistle_summons_no_show_total 5
zero whistle_cases_open 30
for series in 'whistle_case_overdue_total{deadline="accept",level="community"} 0' \
  'whistle_case_overdue_total{deadline="report_in",level="county"} 0' \
  'whistle_summons_no_show_total{level="county"} 0' \
  'whistle_case_transitions_total{category="dispute",kind="report",level="community"} 0' \
  'whistle_case_transitions_total{category="dispute",kind="overdue",level="township"} 0' \
  'whistle_directive_receipts_signed_total{late="true",level="grid"} 0' \
  'whistle_auth_jwks_reloads_total{result="ok"} 0'; do
  grep -qxF "$series" "$DATA/start.txt" || { echo "at start-up: no $series"; exit 1; }
done
grep -q '^whistle_assessment_events_total{figure="received",level="township"} 0$' \
  "$DATA/start.txt" || { echo "at start-up: no whistle_assessment_events_total"; exit 1; }

GRID=dwk-s01-c01-g001
CASE=$(as w grid_worker $GRID --json report --request-id m1 \
  --category dispute.neighbour --severity general --grid $GRID --text "漏水" |
  sed -n 's/^ "id": "\(.*\)",$/\1/p')
sleep 1.5  # accept deadline passes: escalated to the street
# As the county leader with a county bureau. The policy's rule (older form) escalates a
# community-owned case no higher than the street: later misses notify the county instead.
as z leader dwk whistle "$CASE" dwk-public_security >/dev/null
sleep 1.5  # report-in deadline passes: a no-show
as z leader dwk get "$CASE" | grep -q NO-SHOW ||
  { echo "expected a no-show"; exit 1; }
as bad staff nowhere get "$CASE" >/dev/null 2>&1 || true
WHISTLE_TOKEN=not.a.token ctl get "$CASE" >/dev/null 2>&1 || true  # whistle_auth_denied_total
kill -HUP $PID  # whistle_auth_jwks_reloads_total: reloads the issuer keys, keeps serving

scrape >"$DATA/metrics.txt"
promtool check metrics <"$DATA/metrics.txt"
# The build: version and a revision label (a git hash, or "unknown" outside a checkout), value 1.
grep -Eq '^whistle_build_info\{revision="([0-9a-f]{4,40}|unknown)",version="[0-9]+\.[0-9]+\.[0-9]+"\} 1$' \
  "$DATA/metrics.txt" || { echo "whistle_build_info missing or malformed"; grep build_info "$DATA/metrics.txt"; exit 1; }
python3 tests/ops/check_metric_names.py --catalogue docs/metrics.md --exposition "$DATA/metrics.txt" \
  helm/whistle/files/alerts.yaml helm/whistle/files/dashboard.json
echo "== live metrics ok"
