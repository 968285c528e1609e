#!/usr/bin/env bash
# The main job on a fresh machine (as root): a Docker engine, the dependencies, the lab
# (inventories/lab as containers), and playbooks/site.yaml applied to it.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/image/ensure-docker.sh
bash test/image/ensure-apt-cache.sh
# npm ci only when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
./bin/infra lab up
# The lab's secrets (and its CA key, inventories/lab/pki) are vaulted under id "lab" with a
# password committed on purpose: the lab holds nothing real. Production's never is.
./bin/infra apply -i lab playbooks/site.yaml --vault-password-file lab@inventories/lab/vault-password
