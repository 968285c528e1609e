#!/usr/bin/env bash
# A local package cache for every test and lab container: apt-cacher-ng on this machine,
# port 3142 on every interface, so each docker network reaches it at its own gateway (x.y.z.1:
# the fleets' random 10.213.x.0/24 networks, the lab's 172.28.77.0/24, docker's default bridge).
# The test image asks for it before each download (rootfs/apt-proxy-detect) and goes direct
# when it does not answer: tests work without it, only slower. The second run of a role test
# downloads nothing from the mirror. Idempotent; the daemon runs in the background.
# Only plain-http sources go through it (Debian's mirrors); https sources stay direct.
set -euo pipefail
port=3142
conf=/etc/apt-cacher-ng
pidfile=/run/apt-cacher-ng/infra.pid
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# Debian requests go to the mirror this machine uses: the package's default backend
# (ftp.debian.org) may be unreachable from here.
mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
settings="# Written by infra test/image/ensure-apt-cache.sh: the package cache of the test bed.
Port: $port
Remap-debrep: file:deb_mirror*.gz /debian ; ${mirror%/}/"
changed=no
if [ "$(cat "$conf/zzz_infra.conf" 2>/dev/null)" != "$settings" ]; then
  # Before the package: on a machine with systemd its service starts at install.
  mkdir -p "$conf"
  printf '%s\n' "$settings" > "$conf/zzz_infra.conf"
  changed=yes
fi
if answers && [ $changed = no ]; then
  echo "ensure-apt-cache: apt-cacher-ng answers on :$port"
  exit 0
fi
if ! command -v apt-cacher-ng >/dev/null 2>&1; then
  echo "ensure-apt-cache: installing apt-cacher-ng"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold apt-cacher-ng >/dev/null
fi
if answers; then   # running with old settings: restart it the way it was started
  echo "ensure-apt-cache: restarting apt-cacher-ng (settings changed)"
  if [ -s "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 1 50); do answers || break; sleep 0.1; done
  else
    systemctl restart apt-cacher-ng 2>/dev/null || true
  fi
fi
if ! answers; then
  echo "ensure-apt-cache: starting apt-cacher-ng on :$port"
  dirs=(/run/apt-cacher-ng /var/cache/apt-cacher-ng /var/log/apt-cacher-ng)
  mkdir -p "${dirs[@]}"
  rm -f /run/apt-cacher-ng/socket
  chown -R apt-cacher-ng:apt-cacher-ng "${dirs[@]}"   # files a run as root may have left
  nohup runuser -u apt-cacher-ng -- apt-cacher-ng -c "$conf" ForeGround=1 PidFile="$pidfile" \
    >>/var/log/apt-cacher-ng/foreground.log 2>&1 </dev/null &
  for _ in $(seq 1 50); do
    answers && break
    sleep 0.2
  done
fi
answers || { echo "ensure-apt-cache: apt-cacher-ng did not start; see /var/log/apt-cacher-ng/" >&2; exit 1; }
echo "ensure-apt-cache: apt-cacher-ng answers on :$port (cache: $(du -sh /var/cache/apt-cacher-ng 2>/dev/null | cut -f1))"
