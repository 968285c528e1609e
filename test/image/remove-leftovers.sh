#!/usr/bin/env bash
# Removes test containers and networks (label infra-test) whose test process is gone.
# Every fleet labels its containers with the pid of the process that started it
# (infra-test.pid), so concurrent test runs on the same machine are left alone.
# --all: remove every infra-test container and network regardless of owner.
set -euo pipefail
all=${1:-}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
containers=()
while read -r id pid; do
  [ -n "$id" ] || continue
  if [ "$all" = --all ] || ! alive "${pid:-}"; then containers+=("$id"); fi
done < <(docker ps -aq --filter label=infra-test | xargs -r docker inspect --format '{{.Id}} {{index .Config.Labels "infra-test.pid"}}')
[ ${#containers[@]} -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null
networks=()
while read -r id pid; do
  [ -n "$id" ] || continue
  if [ "$all" = --all ] || ! alive "${pid:-}"; then networks+=("$id"); fi
done < <(docker network ls -q --filter label=infra-test | xargs -r docker network inspect --format '{{.Id}} {{index .Labels "infra-test.pid"}}')
[ ${#networks[@]} -eq 0 ] || docker network rm "${networks[@]}" >/dev/null
echo "remove-leftovers: removed ${#containers[@]} container(s), ${#networks[@]} network(s)"
