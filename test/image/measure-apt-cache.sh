#!/usr/bin/env bash
# Measures what the package cache (ensure-apt-cache.sh) saves: `apt-get update` and an install
# of PACKAGES in fresh containers of the test image, straight from the mirror, then through the
# cache twice (the first fills it when it is cold, the second is warm). Prints one line each.
#   bash test/image/measure-apt-cache.sh [PACKAGES...]      (default: postgresql-15)
set -euo pipefail
pkgs=${*:-postgresql-15}
image=${INFRA_TEST_IMAGE:-infra-test-debian12:latest}
script='
gw=$(ip -4 route show default | awk "{print \$3; exit}")
if [ "$1" = direct ]; then opt="-o Acquire::http::Proxy=DIRECT"; else opt="-o Acquire::http::Proxy=http://$gw:3142"; fi
t() { date +%s.%N; }
s=$(t); apt-get $opt update -qq >/dev/null 2>&1
u=$(t); DEBIAN_FRONTEND=noninteractive apt-get $opt install -y -qq --download-only $2 >/dev/null 2>&1
d=$(t); DEBIAN_FRONTEND=noninteractive apt-get $opt install -y -qq $2 >/dev/null 2>&1
e=$(t)
awk -v m="$1" -v s="$s" -v u="$u" -v d="$d" -v e="$e" -v size="$(du -sh /var/cache/apt/archives | cut -f1)" \
  "BEGIN { printf \"%-7s update %5.1f s  download %5.1f s (%s)  install %5.1f s\\n\", m, u - s, d - u, size, e - d }"
'
echo "measure-apt-cache: $pkgs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in direct cache cache; do
  docker run --rm "$image" bash -c "$script" sh "$mode" "$pkgs"
done
