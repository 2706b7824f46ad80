#!/usr/bin/env bash
# A local Whistle federation: one real whistled process per jurisdiction subtree on
# 127.0.0.1, each child node dialing its parent (--parent-address), each parent told which
# subtrees its children host (--child-jurisdictions). The plan comes from
# config/shizuishan.json (the embedded tree).
#
#   app/federation.sh plan [--split county|township]          the nodes, as JSON
#   app/federation.sh start [--split county|township] [--dir DIR] [--base-port P|auto]
#                           [--build DIR] [--timeout S] [-- extra whistled flags]
#   app/federation.sh stop [--dir DIR]                       SIGTERM children first, SIGKILL after 30 s
#   app/federation.sh status [--dir DIR]                     the table, liveness, links per node
#   app/federation.sh address JURISDICTION [--dir DIR]       listen address of the hosting node
#   app/federation.sh kill NAME [--signal SIG] [--dir DIR]   chaos: SIGKILL (default) one node
#                           and wait (30 s at most) until it is gone; a signal that leaves it
#                           running (STOP, CONT, HUP, ...) is sent and not waited for
#   app/federation.sh restart NAME [--dir DIR]               stop it if alive, start it again
#
# Splits: county = 4 nodes (szs hosting the city with children dwk, hn, pl; one node per
# county); township = 40 nodes (szs; each county with its townships as children; one node
# per township). A node's name is its hosted root, its node id that root with every
# character outside [a-z0-9] removed (dwk-s01 -> dwks01).
#
# Layout of DIR (default /tmp/whistle-federation): DIR/<name>/db (RocksDB),
# DIR/<name>/whistled.log, DIR/<name>/args (the exact command line, one argument a line:
# restart reuses it), DIR/nodes.tsv (name node_id hosted listen metrics pid parent),
# DIR/plan.json, DIR/federation.env (which binaries), DIR/issuer (private.pem, jwks.json: the
# federation's token issuer, made on the first start with `whistlectl token keygen --kid
# federation`; every node gets --jwks-file DIR/issuer/jwks.json unless the extra flags bring
# --jwks-file or --dev-header-identity; mint callers' tokens with its private.pem). Ports: node i (plan order) listens on
# P+2i and serves metrics on P+2i+1 (7400..7479 for 40 nodes), or free ports with "auto".
#
# Size: the nodes get nothing exotic (the contract flags only: no bigger caches, no extra
# threads), so an idle node is small: RocksDB with its default small memtables and block
# cache, no cases in memory, threads that mostly sleep. 40 nodes fit on a 2-core / 24 GB
# machine: measured idle with every link up (township split, keepalive 1000 ms, timers
# 1000 ms): ~30 MB RSS and ~0.7% of one core a node, ~1.2 GB and ~0.3 core in all.
# Start-up of all 40 takes ~4 s, stop ~6 s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOPOLOGY=$ROOT/config/shizuishan.json
PROG=${0##*/}

die() { echo "$PROG: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

# --- Plans, addresses and free ports (python3, from the topology JSON) ----------------------
py() {
  python3 - "$TOPOLOGY" "$@" <<'PY'
import json, re, socket, sys

topology_file, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]

def fail(msg):
    sys.exit("federation.sh: " + msg)

def load():
    with open(topology_file) as f:
        js = json.load(f)["jurisdictions"]
    by_id = {j["id"]: j for j in js}
    kids = {}
    for j in js:
        kids.setdefault(j.get("parent_id", ""), []).append(j["id"])
    return js, by_id, kids

def node(hosted, children, parent):
    return {"name": hosted, "node_id": re.sub(r"[^a-z0-9]", "", hosted),
            "hosted": hosted, "children": children, "parent": parent}

def plan(split):
    js, by_id, kids = load()
    root = [j["id"] for j in js if not j.get("parent_id")][0]
    counties = [c for c in kids.get(root, []) if by_id[c]["level"] == "LEVEL_COUNTY"]
    nodes = [node(root, counties, "")]
    if split == "county":
        nodes += [node(c, [], root) for c in counties]
    elif split == "township":
        for c in counties:
            nodes.append(node(c, [t for t in kids.get(c, [])
                                  if by_id[t]["level"] == "LEVEL_TOWNSHIP"], root))
        for c in counties:
            nodes += [node(t, [], c) for t in nodes[[n["name"] for n in nodes].index(c)]["children"]]
    else:
        fail("unknown split %r: want county or township" % split)
    ids = [n["node_id"] for n in nodes]
    bad = [i for i in ids if not 1 <= len(i) <= 16]
    if bad or len(set(ids)) != len(ids):
        fail("plan gives bad or duplicate node ids: %s" % (bad or ids))
    return nodes

def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports

def port_free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()

if cmd == "plan":
    print(json.dumps(plan(args[0]), indent=2, ensure_ascii=False))
elif cmd == "layout":
    # One line a node, plan order: name node_id hosted parent children(comma) depth listen metrics
    split, base = args
    nodes = plan(split)
    if base == "auto":
        ports = free_ports(2 * len(nodes))
    else:
        ports = list(range(int(base), int(base) + 2 * len(nodes)))
        busy = [p for p in ports if not port_free(p)]
        if busy:
            fail("ports in use on 127.0.0.1: %s (another federation or the demo?); "
                     "use --base-port auto or another base" % " ".join(map(str, busy)))
    depth = {}
    for i, n in enumerate(nodes):
        depth[n["name"]] = depth[n["parent"]] + 1 if n["parent"] else 0
        print("\t".join([n["name"], n["node_id"], n["hosted"], n["parent"] or "-",
                         ",".join(n["children"]) or "-", str(depth[n["name"]]),
                         "127.0.0.1:%d" % ports[2 * i], "127.0.0.1:%d" % ports[2 * i + 1]]))
elif cmd == "address":
    # The deepest node whose hosted root is an ancestor-or-self of the jurisdiction.
    jurisdiction, tsv = args
    _, by_id, _ = load()
    if jurisdiction not in by_id:
        fail("unknown jurisdiction %r" % jurisdiction)
    chain, j = [], jurisdiction
    while j:
        chain.append(j)
        j = by_id[j].get("parent_id", "")
    hosts = {}
    with open(tsv) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if cols[0] != "name":
                hosts[cols[2]] = cols
    for j in chain:  # self first, then upwards: the first hit is the deepest
        if j in hosts:
            print(hosts[j][3])
            break
    else:
        fail("no node hosts %r or any of its ancestors" % jurisdiction)
else:
    fail("py: unknown command " + cmd)
PY
}

# --- Options ------------------------------------------------------------------------------
SPLIT=county
DIR=/tmp/whistle-federation
BASE_PORT=7400
BUILD=
TIMEOUT=${FEDERATION_TIMEOUT:-60}
SIGNAL=KILL
EXTRA=()
POSITIONAL=()

[ $# -ge 1 ] || usage
VERB=$1
shift
while [ $# -gt 0 ]; do
  case $1 in
    --split) SPLIT=${2:?--split wants county or township}; shift 2 ;;
    --split=*) SPLIT=${1#*=}; shift ;;
    --dir) DIR=${2:?--dir wants a directory}; shift 2 ;;
    --dir=*) DIR=${1#*=}; shift ;;
    --base-port) BASE_PORT=${2:?--base-port wants a port or auto}; shift 2 ;;
    --base-port=*) BASE_PORT=${1#*=}; shift ;;
    --build) BUILD=${2:?--build wants a build directory}; shift 2 ;;
    --build=*) BUILD=${1#*=}; shift ;;
    --timeout) TIMEOUT=${2:?--timeout wants seconds}; shift 2 ;;
    --signal) SIGNAL=${2:?--signal wants a signal name}; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) usage ;;
    -*) die "unknown option $1 (see $PROG --help)" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
case $SPLIT in county | township) ;; *) die "--split: want county or township, got \"$SPLIT\"" ;; esac
case $BASE_PORT in auto) ;; *[!0-9]* | '') die "--base-port: want a port or auto, got \"$BASE_PORT\"" ;; esac
case $TIMEOUT in *[!0-9]* | '') die "--timeout: want seconds, got \"$TIMEOUT\"" ;; esac
mkdir_dir() { mkdir -p "$DIR" && DIR=$(cd "$DIR" && pwd); }
[ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd)
TSV=$DIR/nodes.tsv

# --- Binaries -----------------------------------------------------------------------------
WHISTLED=
WHISTLECTL=
resolve_build() {
  local b=$BUILD
  if [ -z "$b" ] && [ "${1:-}" != fresh ] && [ -f "$DIR/federation.env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/federation.env"
    return
  fi
  b=${b:-build}
  if [ ! -x "$b/app/whistled" ] && [ -x "$ROOT/$b/app/whistled" ]; then b=$ROOT/$b; fi
  [ -x "$b/app/whistled" ] || die "no whistled at $b/app/whistled (build it, or pass --build DIR)"
  b=$(cd "$b" && pwd)
  WHISTLED=$b/app/whistled
  WHISTLECTL=$b/cli/whistlectl
}

# --- Node table ---------------------------------------------------------------------------
# nodes.tsv: header, then name node_id hosted listen metrics pid parent (plan order: parents
# before children).
need_tsv() { [ -f "$TSV" ] || die "no federation in $DIR (no nodes.tsv; start one first)"; }
rows() { tail -n +2 "$TSV"; }

# True when pid is a live whistled using DIR/<name>/db (not a zombie, not a reused pid).
alive() {
  local name=$1 pid=$2
  [ -n "$pid" ] && [ "$pid" -gt 0 ] 2>/dev/null && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$DIR/$name/db"
}

set_pid() {  # NAME PID: rewrites the node's pid in nodes.tsv
  awk -F'\t' -v OFS='\t' -v n="$1" -v p="$2" 'NR > 1 && $1 == n { $6 = p } { print }' \
    "$TSV" >"$TSV.tmp" && mv "$TSV.tmp" "$TSV"
}

depth_of() {  # NAME: 0 for the root, parent's depth + 1 otherwise
  local name=$1 d=0 parent
  while :; do
    parent=$(awk -F'\t' -v n="$name" 'NR > 1 && $1 == n { print $7 }' "$TSV")
    if [ -z "$parent" ] || [ "$parent" = - ]; then break; fi
    d=$((d + 1))
    name=$parent
  done
  echo $d
}

print_table() {
  local with_state=${1:-}
  {
    if [ -n "$with_state" ]; then
      printf 'NAME\tNODE_ID\tHOSTED\tLISTEN\tMETRICS\tPID\tPARENT\tSTATE\n'
    else
      printf 'NAME\tNODE_ID\tHOSTED\tLISTEN\tMETRICS\tPID\tPARENT\n'
    fi
    while IFS=$'\t' read -r name id hosted listen metrics pid parent; do
      if [ -n "$with_state" ]; then
        local state=dead
        if alive "$name" "$pid"; then state=$(probe "$listen" "$hosted" && echo serving || echo alive); fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$hosted" "$listen" "$metrics" "$pid" "$parent" "$state"
      else
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$hosted" "$listen" "$metrics" "$pid" "$parent"
      fi
    done < <(rows)
  } | column -t -s $'\t'
}

# --- Processes ----------------------------------------------------------------------------
# A token of the federation's issuer (DIR/issuer) for USER ROLE JURISDICTION, valid 10 minutes;
# nothing when there is no issuer (extra flags brought their own keys or dev headers).
issuer_token() {
  [ -f "$DIR/issuer/private.pem" ] || return 0
  "$WHISTLECTL" token mint --key-file "$DIR/issuer/private.pem" --kid federation --user "$1" \
    --role "$2" --jurisdiction "$3" --ttl 10m
}

# The readiness probe: the node answers a topology read. The dev headers matter only to
# nodes started with -- --dev-header-identity.
probe() {
  WHISTLE_TOKEN=$(issuer_token federation.probe leader szs) \
    "$WHISTLECTL" --server "$1" --timeout-ms 1000 --dev-user federation.probe --dev-role leader \
    --dev-jurisdiction szs topology "$2" >/dev/null 2>&1
}

# Starts DIR/<name>/args in its own session, immune to SIGHUP, output to its log; prints
# the pid (the exec'd whistled keeps the pid of the wrapping shell).
spawn() {
  local name=$1
  local -a args
  mapfile -t args <"$DIR/$name/args"
  echo "=== $(date '+%F %T') start: ${args[*]}" >>"$DIR/$name/whistled.log"
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'echo $$ >"$1"; log=$2; shift 2; exec nohup "$@" </dev/null >>"$log" 2>&1' \
    spawn "$DIR/$name/pid" "$DIR/$name/whistled.log" "${args[@]}" </dev/null >/dev/null 2>&1 &
  local _
  for _ in $(seq 250); do [ -s "$DIR/$name/pid" ] && break; sleep 0.02; done
  [ -s "$DIR/$name/pid" ] || die "$name: no pid file after 5 s (setsid or bash missing?)"
  cat "$DIR/$name/pid"
}

wait_ready() {  # NAME LISTEN HOSTED PID: until it answers; on failure the log tail, status 1
  local name=$1 listen=$2 hosted=$3 pid=$4 deadline=$((SECONDS + TIMEOUT))
  while ! probe "$listen" "$hosted"; do
    if ! alive "$name" "$pid"; then
      echo "$PROG: node $name (pid $pid) exited during start-up; tail of $DIR/$name/whistled.log:" >&2
      tail -n 25 "$DIR/$name/whistled.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$PROG: node $name (pid $pid) did not answer on $listen within ${TIMEOUT}s; tail of $DIR/$name/whistled.log:" >&2
      tail -n 25 "$DIR/$name/whistled.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# SIGTERM the named nodes (a list of "name pid"), wait until they are gone or the deadline
# (epoch seconds) passes.
term_and_wait() {
  local deadline=$1
  shift
  local entry name pid left
  for entry in "$@"; do
    name=${entry% *} pid=${entry#* }
    if alive "$name" "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  while :; do
    left=0
    for entry in "$@"; do
      name=${entry% *} pid=${entry#* }
      alive "$name" "$pid" && left=$((left + 1))
    done
    [ $left -eq 0 ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

kill_rest() {
  local entry name pid
  for entry in "$@"; do
    name=${entry% *} pid=${entry#* }
    if alive "$name" "$pid"; then
      echo "$PROG: $name (pid $pid) still running after 30 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# --- Verbs --------------------------------------------------------------------------------
cmd_plan() {
  [ ${#POSITIONAL[@]} -eq 0 ] || die "plan: unexpected argument ${POSITIONAL[0]}"
  py plan "$SPLIT"
}

cmd_start() {
  [ ${#POSITIONAL[@]} -eq 0 ] || die "start: unexpected argument ${POSITIONAL[0]}"
  if [ -f "$TSV" ]; then
    local total=0 live=0 name id hosted listen metrics pid parent
    while IFS=$'\t' read -r name id hosted listen metrics pid parent; do
      total=$((total + 1))
      alive "$name" "$pid" && live=$((live + 1))
    done < <(rows)
    if [ $live -gt 0 ]; then
      resolve_build
      echo "federation in $DIR already running ($live of $total nodes alive; stop it first to start another)"
      print_table state
      return 0
    fi
  fi
  resolve_build fresh
  local layout
  layout=$(py layout "$SPLIT" "$BASE_PORT") || exit 1
  mkdir_dir
  TSV=$DIR/nodes.tsv
  py plan "$SPLIT" >"$DIR/plan.json"
  printf 'WHISTLED=%q\nWHISTLECTL=%q\n' "$WHISTLED" "$WHISTLECTL" >"$DIR/federation.env"
  printf 'name\tnode_id\thosted\tlisten\tmetrics\tpid\tparent\n' >"$TSV"
  # Signed identities: the federation's own issuer, unless the extra flags say otherwise.
  local -a auth=()
  if ! printf '%s\n' "${EXTRA[@]+"${EXTRA[@]}"}" | grep -qE '^--(jwks-file|dev-header-identity)'; then
    if [ ! -f "$DIR/issuer/private.pem" ]; then
      "$WHISTLECTL" token keygen --dir "$DIR/issuer" --kid federation >/dev/null ||
        die "cannot make the federation's token issuer in $DIR/issuer"
    fi
    auth=(--jwks-file "$DIR/issuer/jwks.json")
  fi

  # Listen addresses by name, for the children's --parent-address.
  declare -A listen_of
  local name id hosted parent children depth listen metrics
  while IFS=$'\t' read -r name id hosted parent children depth listen metrics; do
    listen_of[$name]=$listen
  done <<<"$layout"

  local max_depth d pid
  max_depth=$(cut -f6 <<<"$layout" | sort -n | tail -1)
  echo "starting $(wc -l <<<"$layout") whistled nodes ($SPLIT split) in $DIR"
  for d in $(seq 0 "$max_depth"); do
    local -a started=()
    while IFS=$'\t' read -r name id hosted parent children depth listen metrics; do
      [ "$depth" = "$d" ] || continue
      mkdir -p "$DIR/$name"
      rm -f "$DIR/$name/pid"
      {
        printf '%s\n' "$WHISTLED" --node-id "$id" --listen "$listen" --metrics-listen "$metrics" \
          --data-dir "$DIR/$name/db" --hosted-jurisdiction "$hosted"
        [ ${#auth[@]} -eq 0 ] || printf '%s\n' "${auth[@]}"
        [ "$parent" = - ] || printf '%s\n' --parent-address "${listen_of[$parent]}"
        [ "$children" = - ] || printf '%s\n' --child-jurisdictions "$children"
        [ ${#EXTRA[@]} -eq 0 ] || printf '%s\n' "${EXTRA[@]}"
      } >"$DIR/$name/args"
      pid=$(spawn "$name")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$hosted" "$listen" "$metrics" "$pid" \
        "$parent" >>"$TSV"
      started+=("$name	$listen	$hosted	$pid")
    done <<<"$layout"
    # Every node of this level answers before its children dial it.
    local entry
    for entry in "${started[@]}"; do
      IFS=$'\t' read -r name listen hosted pid <<<"$entry"
      if ! wait_ready "$name" "$listen" "$hosted" "$pid"; then
        echo "$PROG: start failed; stopping the nodes already started (logs stay in $DIR)" >&2
        cmd_stop >/dev/null
        exit 1
      fi
    done
  done
  echo "federation running ($SPLIT split, $(rows | wc -l) nodes); stop with: $PROG stop --dir $DIR"
  print_table
}

cmd_stop() {
  need_tsv
  local name id hosted listen metrics pid parent d max=0
  declare -A level
  while IFS=$'\t' read -r name id hosted listen metrics pid parent; do
    d=$(depth_of "$name")
    level[$d]+="$name $pid"$'\n'
    if [ "$d" -gt "$max" ]; then max=$d; fi
  done < <(rows)
  local live=0
  while IFS=$'\t' read -r name id hosted listen metrics pid parent; do
    if alive "$name" "$pid"; then live=$((live + 1)); fi
  done < <(rows)
  if [ $live -eq 0 ]; then
    echo "nothing running in $DIR"
    return 0
  fi
  local deadline=$(($(date +%s) + 30)) all=()
  # Children first: their link streams close before the parent drains.
  for d in $(seq "$max" -1 0); do
    local -a nodes=()
    mapfile -t nodes < <(printf '%s' "${level[$d]:-}")
    [ ${#nodes[@]} -gt 0 ] || continue
    all+=("${nodes[@]}")
    term_and_wait "$deadline" "${nodes[@]}" || true
  done
  kill_rest "${all[@]}"
  echo "federation in $DIR stopped"
}

cmd_status() {
  need_tsv
  resolve_build
  print_table state
  if "$WHISTLECTL" help 2>/dev/null | grep -qw links; then
    local name id hosted listen metrics pid parent
    while IFS=$'\t' read -r name id hosted listen metrics pid parent; do
      echo
      echo "== $name ($listen) links"
      if alive "$name" "$pid"; then
        WHISTLE_TOKEN=$(issuer_token federation.status leader szs) \
          "$WHISTLECTL" --server "$listen" --timeout-ms 2000 --dev-user federation.status \
          --dev-role leader --dev-jurisdiction szs links 2>&1 || true
      else
        echo "(not running)"
      fi
    done < <(rows)
  fi
}

cmd_address() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "address: want exactly one JURISDICTION"
  need_tsv
  py address "${POSITIONAL[0]}" "$TSV"
}

node_row() {  # NAME -> prints its tsv row or dies
  local row
  row=$(awk -F'\t' -v n="$1" 'NR > 1 && $1 == n' "$TSV")
  [ -n "$row" ] || die "no node named \"$1\" in $TSV (names: $(rows | cut -f1 | tr '\n' ' '))"
  echo "$row"
}

cmd_kill() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "kill: want exactly one NAME"
  need_tsv
  local name id hosted listen metrics pid parent
  local row
  row=$(node_row "${POSITIONAL[0]}") || exit 1
  IFS=$'\t' read -r name id hosted listen metrics pid parent <<<"$row"
  alive "$name" "$pid" || die "$name (pid $pid) is not running"
  local sig=${SIGNAL^^}
  sig=${sig#SIG}
  case $sig in *[!0-9]* | '') ;; *) sig=$(kill -l "$sig" 2>/dev/null) || sig= ;; esac
  { [ -n "$sig" ] && kill -l "$sig" >/dev/null 2>&1; } || die "--signal: unknown signal \"$SIGNAL\""
  kill -"$sig" "$pid"
  # Signals after which whistled runs on: job control, those ignored by default, and HUP
  # (it reloads its issuer keys). Sent, not waited for; every other signal ends it.
  case $sig in
    STOP | TSTP | TTIN | TTOU | CONT | CHLD | URG | WINCH | HUP)
      echo "$name (pid $pid): SIG$sig sent (it does not end the node; not waiting)"
      return 0
      ;;
  esac
  local _
  for _ in $(seq 300); do alive "$name" "$pid" || break; sleep 0.1; done
  if alive "$name" "$pid"; then
    echo "$name (pid $pid): SIG$sig sent, still running after 30 s"
  else
    echo "$name (pid $pid) killed with SIG$sig"
  fi
}

cmd_restart() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "restart: want exactly one NAME"
  need_tsv
  resolve_build
  local name id hosted listen metrics pid parent
  local row
  row=$(node_row "${POSITIONAL[0]}") || exit 1
  IFS=$'\t' read -r name id hosted listen metrics pid parent <<<"$row"
  if alive "$name" "$pid"; then
    term_and_wait $(($(date +%s) + 30)) "$name $pid" || kill_rest "$name $pid"
  fi
  [ -f "$DIR/$name/args" ] || die "no $DIR/$name/args to restart $name from"
  rm -f "$DIR/$name/pid"
  pid=$(spawn "$name")
  set_pid "$name" "$pid"
  wait_ready "$name" "$listen" "$hosted" "$pid" || exit 1
  echo "$name restarted (pid $pid, $listen)"
}

case $VERB in
  plan) cmd_plan ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  address) cmd_address ;;
  kill) cmd_kill ;;
  restart) cmd_restart ;;
  -h | --help | help) usage ;;
  *) die "unknown verb \"$VERB\" (plan, start, stop, status, address, kill, restart)" ;;
esac
