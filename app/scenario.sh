#!/usr/bin/env bash
# The main job: plays the scenario through the public gRPC API with
# whistlectl, printing every step, the case histories and the counts.
#
#   app/scenario.sh [BUILD_DIR]                 across a local federation: one whistled per
#                                               township, county and the city (40 processes)
#   WHISTLE_DEMO=one-process app/scenario.sh    one whistled hosting the whole city
#
# Env: WHISTLE_PORT (first port, default 7400; "auto" = free ports), WHISTLE_DEMO_SPLIT
# (township | county, default township). Every caller talks to the node of its own
# jurisdiction; cases, summons and answers cross the node links. Every caller presents a
# signed token: the demo's issuer (whistlectl token keygen) signs one per caller
# (whistlectl token mint) and every node verifies them (--jwks-file).
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${WHISTLE_DEMO:-federation}
PORT=${WHISTLE_PORT:-7400}
DATA=$(mktemp -d /tmp/whistle-demo-XXXXXX)

ctl() { "$BUILD/cli/whistlectl" "$@"; }
step() { printf '\n== %s\n' "$*"; }
# The token issuer: app/federation.sh makes DIR/issuer on start; in one process, made here.
ISSUER=$DATA/federation/issuer
token() { ctl token mint --key-file "$ISSUER/private.pem" --kid federation --ttl 1h "$@"; }

if [ "$MODE" = one-process ]; then
  ctl token keygen --dir "$ISSUER" --kid federation >/dev/null
  if [ "$PORT" = auto ]; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  fi
  "$BUILD/app/whistled" --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$((PORT + 1))" \
    --data-dir "$DATA/db" --jwks-file "$ISSUER/jwks.json" 2>"$DATA/whistled.log" &
  PID=$!
  trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
  for _ in $(seq 100); do
    WHISTLE_TOKEN=$(token --user probe --role leader --jurisdiction szs) \
      ctl --server "127.0.0.1:$PORT" topology szs >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || { cat "$DATA/whistled.log"; exit 1; }
    sleep 0.1
  done
  node_of() { echo "127.0.0.1:$PORT"; }
else
  FED=(--dir "$DATA/federation")
  trap '"$ROOT/app/federation.sh" stop "${FED[@]}" >/dev/null 2>&1 || true; rm -rf "$DATA"' EXIT
  step "starting a local federation (${WHISTLE_DEMO_SPLIT:-township} split): one whistled per node"
  "$ROOT/app/federation.sh" start --split "${WHISTLE_DEMO_SPLIT:-township}" "${FED[@]}" \
    --base-port "$PORT" --build "$BUILD"
  node_of() { "$ROOT/app/federation.sh" address "$1" "${FED[@]}"; }
fi

GRID=dwk-s01-c01-g001      # 长胜第1社区第1网格, 大武口区
COMMUNITY=dwk-s01-c01      # 长胜第1社区
STREET=dwk-s01             # 长胜街道
COUNTY=dwk                 # 大武口区
POLICE=$STREET-police_station
BUREAU=$COUNTY-justice     # 大武口区司法局: a county bureau, on the county's node

# Each caller talks to the node hosting its own jurisdiction.
AT_STREET=$(node_of $STREET)
AT_COUNTY=$(node_of $COUNTY)
AT_CITY=$(node_of szs)
# One token per caller, signed by the issuer; whistlectl sends it as "authorization: Bearer".
T_GRID=$(token --user wang.grid --role grid_worker --jurisdiction $GRID)
T_COMMUNITY=$(token --user li.community --role staff --jurisdiction $COMMUNITY)
T_STREET=$(token --user zhao.street --role staff --jurisdiction $STREET)
T_POLICE=$(token --user desk.police --role department --department $POLICE)
T_BUREAU=$(token --user desk.justice --role department --department $BUREAU)
T_COUNTY=$(token --user qian.county --role staff --jurisdiction $COUNTY)
T_CITY=$(token --user sun.city --role leader --jurisdiction szs)
as_grid() { WHISTLE_TOKEN=$T_GRID ctl --server "$AT_STREET" "$@"; }
as_community() { WHISTLE_TOKEN=$T_COMMUNITY ctl --server "$AT_STREET" "$@"; }
as_street() { WHISTLE_TOKEN=$T_STREET ctl --server "$AT_STREET" "$@"; }
as_police() { WHISTLE_TOKEN=$T_POLICE ctl --server "$AT_STREET" "$@"; }
as_bureau() { WHISTLE_TOKEN=$T_BUREAU ctl --server "$AT_COUNTY" "$@"; }
as_county() { WHISTLE_TOKEN=$T_COUNTY ctl --server "$AT_COUNTY" "$@"; }
as_city() { WHISTLE_TOKEN=$T_CITY ctl --server "$AT_CITY" "$@"; }
case_id() { sed -n 's/^ "id": "\(.*\)",$/\1/p'; }
# A transfer to another node is answered once durable here and delivered right after.
owned_at() {
  for _ in $(seq 100); do
    "$@" --json get "$CASE" 2>/dev/null | grep -q '"read_only": true' || return 0
    sleep 0.05
  done
}

echo "street $STREET: $AT_STREET   county $COUNTY: $AT_COUNTY   city szs: $AT_CITY"

step "1. grid worker wang.grid reports a neighbour dispute (一般) in $GRID"
CASE=$(as_grid --json report --request-id demo-1 --category dispute.neighbour --severity general \
  --grid $GRID --address "3号楼2单元" --text "楼上漏水引发邻里争吵" | case_id)
as_grid get "$CASE"
step "2. graded response routed it to community $COMMUNITY, which accepts it"
as_community accept "$CASE" --note "已受理"
step "3. the community cannot settle it and escalates to the street $STREET"
as_community escalate "$CASE" --reason "调解未果,需派出所和司法局介入"
step "4. the street blows the whistle: its police station and the county's justice bureau"
as_street whistle "$CASE" $POLICE $BUREAU --note "联合调处"
as_police report-in "$CASE" --note "民警已到场"
step "   the bureau's desk reports in on its own (county) node; the street's node owns the case"
as_bureau report-in "$CASE" --note "司法局已到场"
step "5. both departments resolve; the grid worker verifies; the street closes; the reporter rates 5/5"
as_police resolve "$CASE" --note "已调解"
as_bureau resolve "$CASE" --note "已签调解协议"
as_grid verify "$CASE" --note "现场核查,已修复漏水"
as_street close "$CASE" --note "结案"
as_grid evaluate "$CASE" 5 --comment "满意"
step "6. the case history (who, what, when, which jurisdiction), read on the street's node"
as_grid history "$CASE"
step "   the same history, read on the county's node (a read-only copy kept current by the owner)"
as_bureau history "$CASE"
step "   cases per state in 长胜街道 ($STREET)"
as_street count

step "7. a major gas leak (重大) reported in $GRID on the street's node: forwarded to the county's node, which creates and owns it"
CASE=$(as_grid --json report --request-id demo-2 --category safety.gas --severity major \
  --grid $GRID --address "5号楼" --text "燃气管道泄漏" | case_id)
owned_at as_county
as_county accept "$CASE" --note "区应急已受理"
step "8. the county escalates it to the city: a second hop, county node -> city node"
as_county escalate "$CASE" --reason "涉及多个街道,需市级协调"
owned_at as_city
as_city keep "$CASE" --note "市级指挥部处置"
step "   read on the street's node: owned by the city, a read-only copy here"
as_grid get "$CASE"
as_grid history "$CASE"

step "9. the city leader's assessment (考核) of the street this month, asked at the city's node"
# The street's node sends its figures up the links every 200 ms: wait until they are there.
for _ in $(seq 50); do
  as_city --json assess $STREET | grep -q '"closed": "1"' && break
  sleep 0.1
done
as_city assess $STREET
step "   $COUNTY's streets and towns ranked by response rate (accepted in time)"
as_city rank $COUNTY --by response_rate

# WHISTLE_CONSOLE=keep: leave the nodes running and serve the leaders' console (指挥中心) on
# the city's node until Ctrl-C (the page is built by app/console/web/build.sh).
if [ "${WHISTLE_CONSOLE:-}" = keep ]; then
  "$ROOT/app/console/web/build.sh" >/dev/null
  if [ "${WHISTLE_PORT:-7400}" = auto ]; then
    CONSOLE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  else
    CONSOLE_PORT=$((PORT + 80))
  fi
  "$BUILD/app/console/whistle-console" --listen "127.0.0.1:$CONSOLE_PORT" --node "$(node_of szs)" \
    --assets "$ROOT/app/console/web/dist" 2>"$DATA/console.log" &
  CONSOLE_PID=$!
  trap 'kill -TERM $CONSOLE_PID 2>/dev/null; wait $CONSOLE_PID 2>/dev/null' INT TERM
  mkdir -p "$DATA/tokens"
  for who in "sun.city leader szs" "qian.county staff $COUNTY" "zhao.street staff $STREET" \
             "wang.grid grid_worker $GRID"; do
    set -- $who
    ctl token mint --key-file "$ISSUER/private.pem" --kid federation --ttl 8h \
      --user "$1" --role "$2" --jurisdiction "$3" >"$DATA/tokens/$1.jwt"
  done
  step "the leaders' console: http://127.0.0.1:$CONSOLE_PORT/ (Ctrl-C stops it and every node)"
  echo "sign in with a token (valid 8 h) from $DATA/tokens/: sun.city.jwt (city leader),"
  echo "qian.county.jwt ($COUNTY staff), zhao.street.jwt ($STREET staff), wang.grid.jwt (grid worker)"
  wait $CONSOLE_PID || true
fi
