# Sourced by the whistlectl end-to-end scripts: a fresh whistled on a free port
# trusting a test issuer, stopped and removed on exit. Defines ctl (whistlectl),
# mint (a token from the issuer) and ctlas (whistlectl as the identity its
# leading --user/--role/--jurisdiction/--department flags name), and fail.
# Needs BUILD and NAME (the script's name, for messages).
DATA=$(mktemp -d "/tmp/whistle-$NAME-XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ctl() { "$BUILD/cli/whistlectl" "$@"; }
fail() { echo "$NAME: $*"; exit 1; }
ctl token keygen --dir "$DATA/issuer" --kid t >/dev/null
mint() { ctl token mint --key-file "$DATA/issuer/private.pem" --kid t --ttl 1h "$@"; }
ctlas() {
  local id=()
  while [ $# -gt 0 ]; do
    case $1 in
      --user | --role | --jurisdiction | --department) id+=("$1" "$2"); shift 2 ;;
      *) break ;;
    esac
  done
  WHISTLE_TOKEN=$(mint "${id[@]}") ctl "$@"
}
"$BUILD/app/whistled" --listen 127.0.0.1:$PORT --metrics-listen "" --data-dir "$DATA/db" \
  --jwks-file "$DATA/issuer/jwks.json" 2>"$DATA/log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
export WHISTLE_SERVER=127.0.0.1:$PORT
for _ in $(seq 100); do ctlas --user p --role leader --jurisdiction szs topology >/dev/null 2>&1 && break; sleep 0.1; done
