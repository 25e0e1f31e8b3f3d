#!/usr/bin/env bash
# Builds the scoring runtimes' base images offline, from Debian bookworm packages only:
#
#   REGISTRY/edgeml/runtime-node-base:bookworm-N    nodejs (Node 18) + ca-certificates, no npm
#   REGISTRY/edgeml/runtime-python-base:bookworm-N  python3, numpy, jsonschema, pip, ca-certificates
#
# For each platform: mmdebstrap makes a lean rootfs (foreign architectures run their maintainer
# scripts under qemu), `docker import --platform` turns it into an image, which is pushed under a
# per-platform tag (…:bookworm-N-amd64); `docker buildx imagetools create` then joins those into
# one multi-arch tag. An image whose multi-arch tag already holds every requested platform is
# skipped (the tag is the cache key; the registry's storage is the cache), so a second run takes
# seconds. Bump the image's version below when its content changes; --force rebuilds (for
# example to pick up Debian security updates).
#
# Usage: images/base/build.sh [--registry HOST:PORT] [--platforms linux/amd64,linux/arm64]
#                             [--only node|python] [--force] [--jobs N]
# --jobs: platform builds run at once (default: the number of CPUs; emulated ones are CPU-bound).
# A --platforms narrower than the default makes an index of just those platforms; a later run with
# the default adds the others back (reusing per-platform tags already in the registry).
# Needs root (mmdebstrap's root mode), docker with buildx, qemu binfmt for foreign platforms and a
# reachable registry: `bash scripts/rig/setup.sh` installs and starts all of them.
set -euo pipefail

# NODE_VERSION and PYTHON_VERSION: the tags, shared with the hub's defaults.
# shellcheck source=versions.env
. "$(dirname "$0")/versions.env"
NODE_PACKAGES=nodejs,ca-certificates
PYTHON_PACKAGES=python3,python3-numpy,python3-jsonschema,python3-pip,ca-certificates
SUITE=bookworm

SETUP="bash scripts/rig/setup.sh"
LOG_TAG=${EDGEML_LOG_TAG:-base}
REGISTRY=${EDGEML_RIG_REGISTRY:-127.0.0.1:5000}
PLATFORMS=linux/amd64,linux/arm64
ONLY=
FORCE=0
JOBS=$(nproc 2>/dev/null || echo 2)

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*"; }
die() { printf '[%s %s] ERROR: %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --registry) REGISTRY=${2:?--registry needs HOST:PORT}; shift 2 ;;
    --registry=*) REGISTRY=${1#*=}; shift ;;
    --platforms) PLATFORMS=${2:?--platforms needs a list}; shift 2 ;;
    --platforms=*) PLATFORMS=${1#*=}; shift ;;
    --only) ONLY=${2:?--only needs node or python}; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    --jobs) JOBS=${2:?--jobs needs a number}; shift 2 ;;
    --jobs=*) JOBS=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs takes a positive number, not '$JOBS'"

case $ONLY in
  '') IMAGES=(node python) ;;
  node | python) IMAGES=("$ONLY") ;;
  *) die "--only takes node or python, not '$ONLY'" ;;
esac

# linux/amd64 → amd64 (Debian's architecture name); only what the rig can build and run.
ARCHES=()
IFS=, read -r -a _platforms <<<"$PLATFORMS"
PLATFORMS_LIST=()
for p in "${_platforms[@]}"; do
  case $p in
    linux/amd64) ARCHES+=(amd64) ;;
    linux/arm64 | linux/arm64/v8) p=linux/arm64; ARCHES+=(arm64) ;;
    *) die "unsupported platform '$p' (supported: linux/amd64, linux/arm64)" ;;
  esac
  PLATFORMS_LIST+=("$p")
done
[ ${#ARCHES[@]} -gt 0 ] || die "--platforms is empty"

# --- prerequisites ---------------------------------------------------------------------------

need_cmd() { # CMD WHAT
  command -v "$1" >/dev/null 2>&1 || die "$2 is missing ($1 not on PATH): run \`$SETUP\` (as root) to install it"
}

check_docker() {
  need_cmd node "Node.js (used to read registry JSON)"
  need_cmd docker "the docker CLI"
  docker info >/dev/null 2>&1 || die "dockerd is not running or not reachable (\`docker info\` fails): run \`$SETUP\` to start it"
  docker buildx version >/dev/null 2>&1 || die "docker buildx is missing: run \`$SETUP\` (installs docker-buildx)"
}

check_registry() {
  need_cmd curl "curl"
  local scheme code
  for scheme in http https; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$scheme://$REGISTRY/v2/" 2>/dev/null || true)
    # 401: the registry is there and wants credentials (docker's own login then applies).
    case $code in 200 | 401) return 0 ;; esac
  done
  die "no registry answers on $REGISTRY (GET /v2/ failed): run \`$SETUP\` to start the rig's registry, or pass --registry HOST:PORT"
}

# Only needed when something has to be built: a warm run works without them.
check_builders() {
  [ "$(id -u)" = 0 ] || die "building needs root (mmdebstrap's root mode, docker): rerun with sudo"
  need_cmd mmdebstrap "mmdebstrap"
  [ -d /usr/share/mmdebstrap/hooks/merged-usr ] \
    || die "mmdebstrap's merged-usr hook is missing (/usr/share/mmdebstrap/hooks/merged-usr): install mmdebstrap ≥ 1.0 from Debian (\`$SETUP\`)"
  local native arch
  native=$(dpkg --print-architecture)
  for arch in "${ARCHES[@]}"; do
    [ "$arch" = "$native" ] && continue
    local handler=/proc/sys/fs/binfmt_misc/qemu-${arch/arm64/aarch64}
    grep -qs enabled "$handler" \
      || die "no enabled qemu binfmt handler for linux/$arch ($handler): run \`$SETUP\` (installs qemu-user-static, mounts binfmt_misc)"
    # F (fix binary): the kernel opens the interpreter once, so it works inside the chroot too.
    grep -qs '^flags:.*F' "$handler" \
      || die "the qemu binfmt handler for linux/$arch lacks the F flag ($handler): install qemu-user-static from Debian (\`$SETUP\`)"
  done
}

# --- Debian sources: the mirrors this host's apt uses ------------------------------------------

# Prints "URI SUITE" for every deb source the host's apt has (one-line and deb822 formats).
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      function flush(  n, m, i, j, u, s) {
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
        }
        types = uris = suites = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "uris:" { $1 = ""; uris = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { flush() }' "$f"
  done
}

# Sets SOURCES to mmdebstrap mirror arguments: SUITE, SUITE-updates and SUITE-security from the
# host's apt configuration, falling back to deb.debian.org.
debian_sources() {
  local all main updates security
  all=$(host_sources)
  main=$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$all")
  updates=$(awk -v s="$SUITE-updates" '$2 == s { print $1; exit }' <<<"$all")
  security=$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$all")
  main=${main:-http://deb.debian.org/debian}
  SOURCES=("deb $main $SUITE main")
  [ -z "$updates" ] || SOURCES+=("deb $updates $SUITE-updates main")
  if [ -n "$security" ]; then
    SOURCES+=("deb $security $SUITE-security main")
  else
    log "note: the host has no $SUITE-security source; building without security updates"
  fi
}

# --- registry queries ------------------------------------------------------------------------

# Prints the platforms (os/arch) of REF's index, one a line, sorted; fails if REF is missing.
index_platforms() {
  docker buildx imagetools inspect --raw "$1" 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      if (!s.trim()) process.exit(1);
      const j = JSON.parse(s);
      const ps = (j.manifests || []).map((m) => m.platform).filter((p) => p && p.os !== "unknown");
      console.log(ps.map((p) => p.os + "/" + p.architecture).sort().join("\n"));
    });'
}

# True when REF is an index holding every platform in PLATFORMS_LIST.
has_platforms() {
  local have p
  have=$(index_platforms "$1") || return 1
  for p in "${PLATFORMS_LIST[@]}"; do grep -qxF "$p" <<<"$have" || return 1; done
}

# True when REF is a single-platform image for linux/ARCH.
has_arch_image() {
  local arch
  arch=$(docker buildx imagetools inspect --format '{{json .Image}}' "$1" 2>/dev/null \
    | node -e 'let s=""; process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{ if (!s.trim()) process.exit(1); const j = JSON.parse(s); console.log(j.architecture || ""); });') || return 1
  [ "$arch" = "$2" ]
}

# Prints, per platform of REF's index: compressed size (layers + config, as stored in the
# registry) and uncompressed size (the rootfs tar, recorded in a label at build time).
print_sizes() {
  local ref=$1 index images
  index=$(docker buildx imagetools inspect --raw "$ref")
  images=$(docker buildx imagetools inspect --format '{{json .Image}}' "$ref")
  local digests
  digests=$(node -e 'const j = JSON.parse(process.argv[1]); for (const m of j.manifests) if (m.platform && m.platform.os !== "unknown") console.log(m.platform.os + "/" + m.platform.architecture, m.digest);' "$index")
  local platform digest manifest
  while read -r platform digest; do
    manifest=$(docker buildx imagetools inspect --raw "${ref%:*}@$digest")
    # shellcheck disable=SC2016 # a JavaScript template literal, not shell
    node -e '
      const [ref, platform, manifest, images] = process.argv.slice(1);
      const m = JSON.parse(manifest), all = JSON.parse(images);
      // One platform: the config itself; several: a map from platform to config.
      const cfg = (all.architecture ? all : all[platform]) || {};
      const packed = m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
      const raw = Number(((cfg.config || {}).Labels || {})["org.edgeml.base.rootfs-bytes"]);
      const mb = (n) => (n / 1e6).toFixed(1) + " MB";
      console.log(`${ref.split("/").slice(1).join("/").padEnd(37)} ${platform.padEnd(11)}  compressed ${mb(packed).padStart(8)}  uncompressed ${raw ? mb(raw).padStart(8) : "unknown"}`);
    ' "$ref" "$platform" "$manifest" "$images"
  done <<<"$digests"
}

# --- building --------------------------------------------------------------------------------

# Builds the rootfs of image NAME for Debian architecture ARCH into the tar file OUT.
build_rootfs() {
  local name=$1 arch=$2 out=$3
  local root="$work/$name-$arch" mmlog="$work/$name-$arch.mmdebstrap.log" include
  local -a opts=(
    # The Essential:yes set (dpkg, a shell, coreutils, …) is the smallest standard set that can
    # run maintainer scripts (ca-certificates' builds the CA bundle) and that RUN steps of a
    # Dockerfile built on top can use. No apt: nothing is installed from Debian inside the image.
    --variant=essential
    --arch="$arch"
    # Bookworm's init-system-helpers wants usrmerge | usr-is-merged; apt would pick usrmerge and
    # with it all of perl (~50 MB). This hook lays out merged /usr itself and installs
    # usr-is-merged instead.
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --aptopt='APT::Install-Recommends "false"'
    # Kept in /etc/dpkg/dpkg.cfg.d/99mmdebstrap, so they also hold for packages added later.
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/groff/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/linda/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
  )
  # mmdebstrap's own check needs the arch-test package; check_builders has already checked the
  # binfmt handler that runs foreign binaries.
  [ "$arch" = "$(dpkg --print-architecture)" ] || opts+=(--skip=check/qemu)
  case $name in
    node) include=$NODE_PACKAGES ;;
    python)
      include=$PYTHON_PACKAGES
      opts+=(
        # PEP 668: a single-application container image should not carry the marker that makes
        # `pip install` refuse to touch the system Python. Excluded (not deleted) so a later
        # upgrade of libpython3.11-stdlib does not bring it back.
        --dpkgopt='path-exclude=/usr/lib/python3*/EXTERNALLY-MANAGED'
      )
      ;;
  esac
  if ! mmdebstrap "${opts[@]}" --include="$include" "$SUITE" "$root" "${SOURCES[@]}" >"$mmlog" 2>&1; then
    tail -n 40 "$mmlog" >&2
    die "mmdebstrap failed for $name linux/$arch (last lines above)"
  fi
  # Not needed at run time, or host-specific (Docker provides resolv.conf and hostname).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
  rm -f "$root"/etc/resolv.conf "$root"/etc/hostname
  # What dpkg's path-exclude lets through: symlinks (changelog.gz -> NEWS.gz), and files made by
  # maintainer scripts (install-info's /usr/share/info/dir). Top-level symlinks in
  # /usr/share/doc (libgcc-s1 -> gcc-12-base) lead to kept copyright files and stay.
  find "$root/usr/share/doc" -mindepth 2 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$root"/usr/share/{man,info,groff,lintian,linda,locale} -mindepth 1 -delete 2>/dev/null || true
  # numpy's own test suites (for numpy.test()); numpy.testing, which libraries use, stays. Deleted
  # after installing: excluding them from dpkg breaks the package's byte-compiling postinst.
  [ "$name" != python ] || find "$root/usr/lib/python3/dist-packages/numpy" -depth -type d -name tests -exec rm -rf {} +
  # Versions of the packages that matter, for a label.
  local -a pkgs
  IFS=, read -r -a pkgs <<<"$include"
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package}=${Version} ' \
    "${pkgs[@]}" python3.11 libnode108 2>/dev/null >"$work/$name-$arch.versions" || true
  tar --numeric-owner -C "$root" -cf "$out" .
  rm -rf --one-file-system "$root"
}

# Builds, imports and pushes REF-ARCH (a single-platform tag) for image NAME.
build_platform() {
  local name=$1 arch=$2 ref=$3 version=$4
  local started=$SECONDS tarball="$work/$name-$arch.tar"
  log "$name linux/$arch: mmdebstrap rootfs ($SUITE, variant essential)"
  build_rootfs "$name" "$arch" "$tarball"
  local bytes cmd
  bytes=$(stat -c %s "$tarball")
  case $name in
    node) cmd='CMD ["node"]' ;;
    python) cmd='CMD ["python3"]' ;;
  esac
  local -a changes=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change "$cmd"
    --change "LABEL org.opencontainers.image.title=\"edgeml runtime-$name-base\""
    --change "LABEL org.opencontainers.image.version=\"$version\""
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE packages, built offline by images/base/build.sh\""
    --change "LABEL org.edgeml.base.packages=\"$(sed 's/ $//' "$work/$name-$arch.versions")\""
    --change "LABEL org.edgeml.base.rootfs-bytes=\"$bytes\""
  )
  [ "$name" != python ] || changes+=(--change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1')
  log "$name linux/$arch: rootfs $((bytes / 1000000)) MB; docker import + push $ref"
  docker import --platform "linux/$arch" "${changes[@]}" "$tarball" "$ref" >/dev/null
  rm -f "$tarball"
  docker push --quiet "$ref" >/dev/null
  # The registry is the cache; the engine keeps no per-platform tags around.
  docker image rm "$ref" >/dev/null 2>&1 || true
  log "$name linux/$arch: pushed in $((SECONDS - started)) s"
}

image_ref() { # NAME → REGISTRY/edgeml/runtime-NAME-base:VERSION
  local version
  case $1 in node) version=$NODE_VERSION ;; python) version=$PYTHON_VERSION ;; esac
  echo "$REGISTRY/edgeml/runtime-$1-base:$version"
}

# Runs "NAME ARCH" build jobs, up to JOBS at a time, each in its own process group (set -m) so
# that cleanup can stop a whole job, mmdebstrap and all. Dies when one fails.
declare -A RUNNING=() # pid → "NAME ARCH"
run_jobs() {
  set -m
  local job pid rc failed=
  local -a queue=("$@")
  while [ ${#queue[@]} -gt 0 ] || [ ${#RUNNING[@]} -gt 0 ]; do
    if [ -z "$failed" ] && [ ${#queue[@]} -gt 0 ] && [ ${#RUNNING[@]} -lt "$JOBS" ]; then
      job=${queue[0]}
      queue=("${queue[@]:1}")
      # shellcheck disable=SC2086 # "NAME ARCH" splits on purpose
      set -- $job
      build_platform "$1" "$2" "$(image_ref "$1")-$2" "$(image_ref "$1" | sed 's/.*://')" </dev/null &
      RUNNING[$!]=$job
      continue
    fi
    [ ${#RUNNING[@]} -gt 0 ] || break
    rc=0
    wait -n -p pid "${!RUNNING[@]}" || rc=$?
    job=${RUNNING[$pid]}
    unset "RUNNING[$pid]"
    if [ "$rc" != 0 ] && [ -z "$failed" ]; then
      failed="$job"
      stop_jobs
    fi
  done
  set +m
  [ -z "$failed" ] || die "building ${failed% *} for linux/${failed#* } failed (see above)"
}

stop_jobs() {
  local pid i
  for pid in "${!RUNNING[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${!RUNNING[@]}"; do
    wait "$pid" 2>/dev/null || true
    # mmdebstrap unmounts its chroot on SIGTERM: give the rest of the group time to finish that.
    for ((i = 0; i < 100; i++)); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    unset "RUNNING[$pid]"
  done
}

# --- main ------------------------------------------------------------------------------------

work=
cleanup() {
  local rc=$?
  set +e # best effort from here: a failing step must not skip the rest
  trap - INT TERM
  [ ${#RUNNING[@]} -eq 0 ] || stop_jobs
  if [ -n "$work" ] && [ -d "$work" ]; then
    [ "$rc" = 0 ] || log "stopped (exit $rc); removing $work"
    # An interrupted mmdebstrap may leave /proc, /sys or /dev mounted in its chroot: unmount them
    # (deepest first), and never let rm cross into a mount.
    findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check_docker
check_registry

# One build at a time per machine; a second caller waits and then finds the images there.
exec 9>/var/tmp/edgeml-base-images.lock
if ! flock -n 9; then
  log "another build of the base images is running; waiting for it"
  flock 9
fi

start=$SECONDS
log "runtime base images: ${IMAGES[*]} for ${PLATFORMS_LIST[*]} in $REGISTRY$([ "$FORCE" = 0 ] || echo ' (--force)')"

# What to do: skip an image whose index has every platform; reuse a per-platform tag an
# interrupted run already pushed; build the rest.
NATIVE=$(dpkg --print-architecture 2>/dev/null || echo amd64)
to_join=()
emulated=()
native=()
for name in "${IMAGES[@]}"; do
  ref=$(image_ref "$name")
  if [ "$FORCE" = 0 ] && has_platforms "$ref"; then
    log "$name: $ref already has ${PLATFORMS_LIST[*]}; skipping (--force rebuilds)"
    continue
  fi
  to_join+=("$name")
  for arch in "${ARCHES[@]}"; do
    if [ "$FORCE" = 0 ] && has_arch_image "$ref-$arch" "$arch"; then
      log "$name linux/$arch: reusing $ref-$arch from an earlier run"
    elif [ "$arch" = "$NATIVE" ]; then
      native+=("$name $arch")
    else
      emulated+=("$name $arch")
    fi
  done
done

jobs_list=("${emulated[@]}" "${native[@]}")
if [ ${#jobs_list[@]} -gt 0 ]; then
  check_builders
  debian_sources
  work=$(mktemp -d /var/tmp/edgeml-base.XXXXXX)
  export TMPDIR=$work
  log "sources: $(printf '%s; ' "${SOURCES[@]}")$JOBS jobs at a time; work dir $work"
  # Emulated (slow) builds first, so the native ones fill the gaps.
  run_jobs "${jobs_list[@]}"
fi

for name in "${to_join[@]}"; do
  ref=$(image_ref "$name")
  refs=()
  for arch in "${ARCHES[@]}"; do refs+=("$ref-$arch"); done
  out=$(docker buildx imagetools create --tag "$ref" "${refs[@]}" 2>&1) \
    || { printf '%s\n' "$out" >&2; die "docker buildx imagetools create failed for $ref"; }
  has_platforms "$ref" || die "$ref does not list ${PLATFORMS_LIST[*]} after imagetools create"
  log "$name: pushed multi-arch $ref (${PLATFORMS_LIST[*]})"
done

log "done in $((SECONDS - start)) s; sizes per platform:"
for name in "${IMAGES[@]}"; do
  print_sizes "$(image_ref "$name")" | while IFS= read -r line; do log "$line"; done
done
