#!/usr/bin/env bash
# Everything the tests need on this machine, idempotent and quick when done:
# a Docker engine that answers (installed and started when missing), the package cache the
# containers download through, the test image (built when its inputs changed), no
# containers left by test runs that died, and promtool/amtool for the monitoring role's
# unit tests. Plus the baseline image (the hardening packages installed) role tests start from.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/ensure-docker.sh"
bash "$here/ensure-apt-cache.sh"
bash "$here/build.sh"
bash "$here/build-baseline.sh"
bash "$here/remove-leftovers.sh"
bash "$here/ensure-prom-tools.sh"
