#!/usr/bin/env bash
# Plays the scenario through a fresh whistled over gRPC with
# whistlectl, printing every step, the case history and the counts.
# Usage: app/scenario.sh [BUILD_DIR]   (env WHISTLE_PORT, default 7400; "auto" = a free port)
set -euo pipefail
BUILD=${1:-build}
PORT=${WHISTLE_PORT:-7400}
if [ "$PORT" = auto ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
METRICS_PORT=$((PORT + 1))
DATA=$(mktemp -d /tmp/whistle-demo-XXXXXX)
export WHISTLE_SERVER=127.0.0.1:$PORT

"$BUILD/app/whistled" --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
  --data-dir "$DATA/db" 2>"$DATA/whistled.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
  "$BUILD/cli/whistlectl" --user probe --role leader --jurisdiction szs topology szs >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { cat "$DATA/whistled.log"; exit 1; }
  sleep 0.1
done

GRID=dwk-s01-c01-g001      # 长胜第1社区第1网格, 大武口区
COMMUNITY=dwk-s01-c01      # 长胜第1社区
STREET=dwk-s01             # 长胜街道
POLICE=$STREET-police_station
JUDICIAL=$STREET-judicial_office

ctl() { "$BUILD/cli/whistlectl" "$@"; }
as_grid() { ctl --user wang.grid --role grid_worker --jurisdiction $GRID "$@"; }
as_community() { ctl --user li.community --role staff --jurisdiction $COMMUNITY "$@"; }
as_street() { ctl --user zhao.street --role staff --jurisdiction $STREET "$@"; }
as_police() { ctl --user desk.police --role department --department $POLICE "$@"; }
as_judicial() { ctl --user desk.judicial --role department --department $JUDICIAL "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "1. grid worker wang.grid reports a neighbour dispute (一般) in $GRID"
CASE=$(as_grid --json report --request-id demo-1 --category dispute.neighbour --severity general \
  --grid $GRID --address "3号楼2单元" --text "楼上漏水引发邻里争吵" | sed -n 's/^ "id": "\(.*\)",$/\1/p')
as_grid get "$CASE"
step "2. graded response routed it to community $COMMUNITY, which accepts it"
as_community accept "$CASE" --note "已受理"
step "3. the community cannot settle it and escalates to the street $STREET"
as_community escalate "$CASE" --reason "调解未果,需派出所和司法所介入"
step "4. the street blows the whistle: police station and judicial office"
as_street whistle "$CASE" $POLICE $JUDICIAL --note "联合调处"
as_police report-in "$CASE" --note "民警已到场"
as_judicial report-in "$CASE" --note "司法所已到场"
step "5. both departments resolve; the grid worker verifies; the street closes; the reporter rates 5/5"
as_police resolve "$CASE" --note "已调解"
as_judicial resolve "$CASE" --note "已签调解协议"
as_grid verify "$CASE" --note "现场核查,已修复漏水"
as_street close "$CASE" --note "结案"
as_grid evaluate "$CASE" 5 --comment "满意"
step "6. the case history (who, what, when, which jurisdiction)"
as_grid history "$CASE"
step "   cases per state in 大武口区 (dwk)"
ctl --user leader.dwk --role leader --jurisdiction dwk count
