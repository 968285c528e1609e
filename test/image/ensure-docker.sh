#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs docker.io and debootstrap when missing,
# starts dockerd in the background when it is not running, waits until it answers.
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-docker: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Each container runs systemd, which takes several inotify instances; the kernel default
# (128 per user) runs out at a few dozen containers (systemd then fails to start and the
# container exits). Raise it like kind and k3d do.
if [ "$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 0)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 || echo "ensure-docker: could not raise fs.inotify.max_user_instances" >&2
fi
if ! docker info >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
docker info >/dev/null 2>&1 || { echo "ensure-docker: dockerd did not answer; see /var/log/dockerd.log" >&2; exit 1; }
echo "ensure-docker: docker $(docker version --format '{{.Server.Version}}') is up"
