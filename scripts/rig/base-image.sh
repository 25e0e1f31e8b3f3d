#!/usr/bin/env bash
# Builds the rig's tiny multi-arch base image offline: busybox-static from Debian's packages
# (mmdebstrap, no container registry on the internet), imported per platform with
# `docker import --platform`, pushed, and joined into one index tag. Skips when the registry has it.
set -euo pipefail
REGISTRY=${1:?registry host:port}
RIG_DIR=${2:?rig dir}
REPO="$REGISTRY/edgeml-rig/busybox"
TAG=bookworm
ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json'

log() { printf '[rig %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if curl -fsS -o /dev/null -H "Accept: $ACCEPT" "http://$REGISTRY/v2/edgeml-rig/busybox/manifests/$TAG"; then
  log "base image $REPO:$TAG already in the registry"
  exit 0
fi

work=$(mktemp -d "$RIG_DIR/base.XXXXXX")
trap 'rm -rf "$work"' EXIT
refs=()
for arch in amd64 arm64; do
  log "building busybox rootfs for linux/$arch with mmdebstrap"
  root="$work/$arch"
  mmdebstrap --quiet --variant=extract --include=busybox-static --arch="$arch" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    bookworm "$root" http://deb.debian.org/debian
  bb=$(cd "$root" && find . -path '*bin/busybox' -type f | head -n 1)
  [ -n "$bb" ] || { echo "busybox not found in the $arch rootfs" >&2; exit 1; }
  mkdir -p "$root/bin" "$root/tmp"
  [ -e "$root/bin/busybox" ] || ln -s "/${bb#./}" "$root/bin/busybox"
  ln -sf busybox "$root/bin/sh"
  ref="$REPO:$TAG-$arch"
  tar -C "$root" -c . | docker import --platform "linux/$arch" - "$ref" >/dev/null
  docker push --quiet "$ref" >/dev/null
  refs+=("$ref")
  log "pushed $ref ($(du -sh "$root" | cut -f1) rootfs)"
done
docker buildx imagetools create --tag "$REPO:$TAG" "${refs[@]}"
log "pushed multi-arch $REPO:$TAG"
