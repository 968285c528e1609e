#!/usr/bin/env bash
# promtool and amtool on this machine, for the unit tests of the monitoring role
# (`promtool check config|rules`, `promtool test rules`, `amtool check-config`): the same
# versions the hosts run, taken from Debian's packages. Only the two static binaries are
# extracted (apt-get download + dpkg-deb): installing the packages would also start a
# Prometheus and an Alertmanager here. Idempotent: quick when both answer.
set -euo pipefail
bin=/usr/local/bin
if command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1; then
  echo "ensure-prom-tools: $(promtool --version 2>&1 | head -1)"
  exit 0
fi
work=$(mktemp -d /tmp/infra-prom-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
download() { apt-get download -q "$@" >/dev/null 2>&1; }
if ! download prometheus prometheus-alertmanager; then
  apt-get update -qq
  download prometheus prometheus-alertmanager || { echo "ensure-prom-tools: apt-get download prometheus prometheus-alertmanager failed" >&2; exit 1; }
fi
for deb in prometheus_*.deb prometheus-alertmanager_*.deb; do dpkg-deb -x "$deb" root; done
install -m 0755 root/usr/bin/promtool "$bin/promtool"
install -m 0755 root/usr/bin/amtool "$bin/amtool"
echo "ensure-prom-tools: installed $(promtool --version 2>&1 | head -1) and amtool in $bin"
