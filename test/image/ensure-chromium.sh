#!/usr/bin/env bash
# Headless Chromium for the tests that render generated documents (infra docs' SVG): Debian's
# package, installed when missing. Prints the binary's path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-chromium: installing chromium" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium
