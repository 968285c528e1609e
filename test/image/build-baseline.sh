#!/usr/bin/env bash
# The baseline test image: the test image (build.sh) with the hardening role's packages
# installed (baseline-packages), for the role tests that harden their hosts first
# (startFleet({ baseline: true })). As a golden image would: the role still runs in full on it,
# its package task finds them installed. Services are enabled, not started: the container was
# not booted. Cached by the base image's id, the package list and this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${INFRA_TEST_IMAGE_NAME:-infra-test-debian12}:latest
name=${INFRA_TEST_BASELINE_IMAGE_NAME:-infra-test-debian12-baseline}
hash=$( { docker image inspect --format '{{.Id}}' "$base"; cat "$here/build-baseline.sh" "$here/baseline-packages"; } | sha256sum | cut -c1-12)
tag="$name:$hash"
if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" "$name:latest"
  echo "build-baseline: $tag is cached"
  exit 0
fi
packages=$(grep -v '^#' "$here/baseline-packages" | xargs)
builder="infra-baseline-build-$$"
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
echo "build-baseline: installing $packages"
# The same apt-get options as the apt module (src/modules/apt.ts): no recommends, keep configs.
docker run --name "$builder" --label infra-test.pid=$$ "$base" /bin/sh -c "
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q update &&
  apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install $packages &&
  apt-get clean && rm -rf /var/lib/apt/lists/*
" >/tmp/infra-baseline-build.log 2>&1 || { tail -30 /tmp/infra-baseline-build.log >&2; exit 1; }
docker commit -c 'CMD ["/lib/systemd/systemd"]' "$builder" "$tag" >/dev/null
docker tag "$tag" "$name:latest"
echo "build-baseline: built $tag"
