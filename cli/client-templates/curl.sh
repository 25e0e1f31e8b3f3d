#!/bin/sh
# A client for the edgeml service __EDGEML_SERVICE__ (written by `edgeml service client`).
# POSIX sh and curl 7.55+ only.
#
#   export __EDGEML_KEY_ENV_NAME__=...           # the service key `edgeml deploy` printed
#   edgeml hub ca > hub-ca.pem && export EDGEML_SERVICE_CA=$PWD/hub-ca.pem
#   sh client.sh input.json                   # or: sh client.sh - < input.json
#
# Sample input: __EDGEML_SAMPLE__
set -eu

URL='__EDGEML_SCORE_URL__'
KEY_ENV='__EDGEML_KEY_ENV__'
# A busy (429) or starting (503) service is asked again after its Retry-After, within these bounds.
MAX_TRIES=5
MAX_WAIT_SECONDS=30

fail() {
  echo "error: $*" >&2
  exit 1
}

key=$(printenv "$KEY_ENV" || true)
[ -n "$key" ] || fail "set $KEY_ENV to the service key"
input=${1:--}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Kept in a file: a retry sends the same body again, even when it came from stdin.
cat -- "$input" >"$work/body" 2>/dev/null || { echo "error: input $input: cannot read it" >&2; exit 2; }
# With EDGEML_SERVICE_CA set, the hub's CA alone is trusted for the gateway.
if [ -n "${EDGEML_SERVICE_CA:-}" ]; then set -- --cacert "$EDGEML_SERVICE_CA"; else set --; fi

tries=0
waited=0
while :; do
  tries=$((tries + 1))
  # The key goes to curl on stdin (-H @-), not on its command line where ps would show it.
  status=$(printf 'Authorization: Bearer %s\n' "$key" | curl -sS "$@" -X POST -H @- -H 'content-type: application/json' \
    --data-binary "@$work/body" -D "$work/headers" -o "$work/answer" -w '%{http_code}' --max-time 60 --stderr "$work/error" "$URL") \
    || fail "cannot reach $URL: $(sed -n 's/^curl: //p' "$work/error" | head -n 1)"
  if [ "$status" = 200 ]; then
    cat "$work/answer"
    echo
    exit 0
  fi
  delay=$(tr -d '\r' <"$work/headers" | sed -n 's/^[Rr][Ee][Tt][Rr][Yy]-[Aa][Ff][Tt][Ee][Rr]: *\([0-9][0-9]*\) *$/\1/p' | tail -n 1)
  delay=${delay:-1}
  if { [ "$status" = 429 ] || [ "$status" = 503 ]; } && [ "$tries" -lt "$MAX_TRIES" ] && [ $((waited + delay)) -le "$MAX_WAIT_SECONDS" ]; then
    sleep "$delay"
    waited=$((waited + delay))
    continue
  fi
  fail "$URL answered $status: $(head -c 300 "$work/answer" | tr '\n' ' ')"
done
