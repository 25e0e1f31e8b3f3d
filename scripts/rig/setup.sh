#!/usr/bin/env bash
# Test rig: installs and starts the real infrastructure the integration tests use.
# Idempotent: on a used machine it reuses whatever already runs. Needs root on Debian 12.
# Writes $RIG_DIR/rig.env, which test helpers read to find the registry and the peer broker.
set -euo pipefail

RIG_DIR=${EDGEML_RIG_DIR:-/var/lib/edgeml-rig}
REGISTRY_ADDR=${EDGEML_RIG_REGISTRY:-127.0.0.1:5000}
MOSQUITTO_ADDR=${EDGEML_RIG_MOSQUITTO:-127.0.0.1:1884}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[rig %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[rig] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dockerd and binfmt_misc need it)"
mkdir -p "$RIG_DIR"/{logs,registry,mosquitto}

# Waits until CMD succeeds, up to SECONDS.
wait_for() {
  local seconds=$1; shift
  local i
  for ((i = 0; i < seconds * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

# True while PID is a live (not zombie) process named NAME.
alive() {
  local pid=$1 name=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

# A daemon killed with -9 leaves its pid file; where PID 1 does not reap, the pid even stays a
# zombie, and dockerd then refuses to start ("process ... is still running").
clear_stale_pidfile() {
  local file=$1 name=$2
  [ -f "$file" ] || return 0
  if ! alive "$(cat "$file" 2>/dev/null)" "$name"; then
    log "removing stale $file"
    rm -f "$file"
  fi
}

install_packages() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker)
  command -v docker >/dev/null && docker buildx version >/dev/null 2>&1 || need+=(buildx)
  command -v qemu-aarch64-static >/dev/null || need+=(qemu)
  command -v curl >/dev/null || need+=(curl)
  command -v openssl >/dev/null || need+=(openssl)
  command -v docker-registry >/dev/null || need+=(registry)
  command -v mosquitto >/dev/null || need+=(mosquitto)
  command -v promtool >/dev/null || need+=(promtool)
  command -v nginx >/dev/null || need+=(nginx)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  command -v update-binfmts >/dev/null || need+=(binfmt)
  # The portal's browser tests drive Debian's chromium; the font is so screenshots show text.
  command -v chromium >/dev/null || need+=(chromium)
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts)
  # `edgeml service client` tests run its Python client and compile (and run) its Java and C# ones.
  command -v python3 >/dev/null || need+=(python3)
  # `edgeml serve --runtime python` tests decode to numpy arrays and pandas DataFrames with Debian's python3.
  /usr/bin/python3 -c 'import numpy, pandas, jsonschema' 2>/dev/null || need+=(python3-libs)
  # `edgeml completion zsh` is checked by a real zsh.
  command -v zsh >/dev/null || need+=(zsh)
  command -v javac >/dev/null || need+=(jdk)
  { command -v mcs >/dev/null && [ -f /usr/lib/mono/4.5/System.Net.Http.dll ]; } || need+=(mono)
  if [ ${#need[@]} -eq 0 ]; then log "packages already installed"; return; fi

  log "installing packages (missing: ${need[*]})"
  # Trixie is used only for docker.io, containerd, docker-buildx and promtool (the tests check the
  # hub's /metrics with it; bookworm has it only inside the prometheus server package); pinned
  # below bookworm so nothing else is upgraded from it.
  if [ ! -f /etc/apt/sources.list.d/edgeml-trixie.sources ]; then
    cat >/etc/apt/sources.list.d/edgeml-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat >/etc/apt/preferences.d/edgeml-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  fi
  # Packages must not start their own daemons (mosquitto would take 1883, the hub's default).
  # Removed again on any exit, so a failed install does not leave services blocked for good.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # `pkg/trixie` (not `-t trixie`) takes only these from trixie; their dependencies (runc, tini,
  # iptables) resolve from bookworm, so no t64 library transition is pulled in. docker-cli is
  # named because recommends are off and the machine's own client may not be there.
  local from_trixie=(docker.io containerd docker-buildx docker-cli promtool)
  local apt_install=(apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends)
  # Dry run first: refuse if apt would take anything else from trixie (that upgrades libc & co).
  local extra
  extra=$(apt-get -s install --no-install-recommends "${from_trixie[@]/%//trixie}" \
    | awk '/^Inst / && /Debian:13|trixie/ {print $2}' | grep -vxF -f <(printf '%s\n' "${from_trixie[@]}") || true)
  [ -z "$extra" ] || die "installing Docker from trixie would also take from trixie: $(echo $extra); refusing"
  "${apt_install[@]}" "${from_trixie[@]/%//trixie}" >/dev/null
  # default-jdk-headless's postinst links man pages: slim images leave out the directory.
  mkdir -p /usr/share/man/man1
  "${apt_install[@]}" qemu-user-static binfmt-support docker-registry mosquitto mmdebstrap \
    nginx-light iproute2 procps ca-certificates curl openssl chromium fonts-dejavu-core \
    zsh python3 python3-numpy python3-pandas python3-jsonschema default-jdk-headless mono-mcs libmono-system-net-http4.0-cil >/dev/null
  log "packages installed: $(dockerd --version)"
}

setup_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
  fi
  # Registered but switched off (by hand or by another tool): switch it on.
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || echo 1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 binfmt handler not enabled"
  log "binfmt_misc: qemu-aarch64 enabled"
}

start_docker() {
  mkdir -p /etc/docker
  # Sets the rig's keys and keeps any others an admin put there; reports whether anything changed.
  local changed
  changed=$(node -e '
    const fs = require("fs"), file = "/etc/docker/daemon.json";
    let cur = {};
    try { cur = JSON.parse(fs.readFileSync(file, "utf8")); } catch {}
    const want = { features: { ...(cur.features || {}), "containerd-snapshotter": true }, iptables: false, ip6tables: false, bridge: "none" };
    const next = { ...cur, ...want };
    if (JSON.stringify(next) === JSON.stringify(cur)) { console.log("no"); process.exit(0); }
    fs.writeFileSync(file, JSON.stringify(next, null, 2) + "\n");
    console.log("yes");')
  if [ "$changed" = yes ]; then
    if docker info >/dev/null 2>&1; then
      log "daemon.json changed: restarting dockerd"
      local old
      old=$(cat /var/run/docker.pid 2>/dev/null || true)
      pkill -x dockerd || true
      wait_for 30 bash -c "$(declare -f alive); ! alive '$old' dockerd" || die "dockerd did not stop"
    fi
  fi
  if docker info >/dev/null 2>&1; then log "dockerd already running"; return; fi
  clear_stale_pidfile /var/run/docker.pid dockerd
  clear_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
  log "starting dockerd"
  nohup dockerd >"$RIG_DIR/logs/dockerd.log" 2>&1 &
  local pid=$!
  wait_for 60 bash -c "docker info || ! grep -q '^State:[[:space:]]*[^Z]' /proc/$pid/status" \
    && alive "$pid" dockerd && docker info >/dev/null 2>&1 \
    || { tail -n 30 "$RIG_DIR/logs/dockerd.log" >&2; die "dockerd did not come up"; }
  docker info --format '{{.DriverStatus}}' | grep -q 'io.containerd.snapshotter' \
    || die "dockerd is not using the containerd image store"
  log "dockerd up: $(docker version --format '{{.Server.Version}}')"
}

start_registry() {
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then log "registry already on $REGISTRY_ADDR"; return; fi
  cat >"$RIG_DIR/registry/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $RIG_DIR/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
CFG
  log "starting docker-registry on $REGISTRY_ADDR"
  nohup docker-registry serve "$RIG_DIR/registry/config.yml" >"$RIG_DIR/logs/registry.log" 2>&1 &
  wait_for 30 curl -fsS "http://$REGISTRY_ADDR/v2/" || { tail -n 20 "$RIG_DIR/logs/registry.log" >&2; die "registry did not come up"; }
}

start_mosquitto() {
  local host=${MOSQUITTO_ADDR%:*} port=${MOSQUITTO_ADDR##*:}
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then log "mosquitto already on $MOSQUITTO_ADDR"; return; fi
  cat >"$RIG_DIR/mosquitto/mosquitto.conf" <<CFG
listener $port $host
allow_anonymous true
persistence false
CFG
  log "starting mosquitto on $MOSQUITTO_ADDR"
  nohup mosquitto -c "$RIG_DIR/mosquitto/mosquitto.conf" >"$RIG_DIR/logs/mosquitto.log" 2>&1 &
  wait_for 15 bash -c "exec 3<>/dev/tcp/$host/$port" || die "mosquitto did not come up"
}

install_packages
setup_binfmt
start_docker
start_registry
start_mosquitto
"$HERE/base-image.sh" "$REGISTRY_ADDR" "$RIG_DIR"

cat >"$RIG_DIR/rig.env" <<ENV
EDGEML_RIG_REGISTRY=$REGISTRY_ADDR
EDGEML_RIG_MOSQUITTO=$MOSQUITTO_ADDR
EDGEML_RIG_BASE_IMAGE=$REGISTRY_ADDR/edgeml-rig/busybox:bookworm
ENV
log "rig ready ($RIG_DIR/rig.env)"
EDGEML_LOG_TAG=rig bash "$HERE/../../images/base/build.sh" --registry "$REGISTRY_ADDR"
