#!/usr/bin/env bash
# Builds the Debian 12 test image (systemd + sshd) with debootstrap and `docker import`.
# Cached by a hash of this script and its inputs: rebuilt only when they change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${INFRA_TEST_IMAGE_NAME:-infra-test-debian12}
hash=$(cat "$here/build.sh" "$here"/rootfs/* 2>/dev/null | sha256sum | cut -c1-12)
tag="$name:$hash"
if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" "$name:latest"
  echo "build-image: $tag is cached"
  exit 0
fi
mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
dir=$(mktemp -d /var/tmp/infra-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
pkgs=systemd,systemd-sysv,dbus,openssh-server,sudo,python3,iproute2,procps,util-linux,ca-certificates,curl,iputils-ping,netcat-openbsd,gnupg,less,apt-utils,locales-all
# Through the package cache when it answers (ensure-apt-cache.sh): a rebuild downloads nothing.
fetch_from=$mirror
if (exec 3<>/dev/tcp/127.0.0.1/3142) 2>/dev/null && [[ $mirror == http://* ]]; then
  fetch_from="http://127.0.0.1:3142/${mirror#http://}"
fi
echo "build-image: debootstrap bookworm from $fetch_from"
debootstrap --variant=minbase --include="$pkgs" bookworm "$dir" "$fetch_from" >/tmp/infra-debootstrap.log 2>&1 \
  || { tail -30 /tmp/infra-debootstrap.log >&2; exit 1; }
# Up to date like Debian's own images: the point release's updates and the security fixes
# baked in, and the security suite in the sources, so each test host's first apply installs
# its roles' packages, not the same 25 updates again (a minute of dpkg per host). A host with
# the fixes must keep the suite: its packages (perl-base …) are newer than the main archive's,
# and their exact-version dependents (perl …) only install from the suite.
# hardening.test.ts takes the suite out again on its hosts to prove the role's catch-up.
# No service starts in the chroot (policy-rc.d).
security=${DEBIAN_SECURITY_MIRROR:-$(awk '/^URIs:/ && $2 ~ /debian-security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
security=${security:-http://deb.debian.org/debian-security}
security_from=$security
[[ $fetch_from == http://127.0.0.1:3142/* && $security == http://* ]] && security_from="http://127.0.0.1:3142/${security#http://}"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' "$fetch_from" "$fetch_from" "$security_from" > "$dir/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d" && chmod 0755 "$dir/usr/sbin/policy-rc.d"
mount -t proc proc "$dir/proc"
trap 'umount "$dir/proc" 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "build-image: upgrading from bookworm-updates and $security_from"
{ chroot "$dir" apt-get -q update && DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get -q -y upgrade; } >/tmp/infra-image-upgrade.log 2>&1 \
  || { tail -30 /tmp/infra-image-upgrade.log >&2; exit 1; }
umount "$dir/proc"
rm -f "$dir/usr/sbin/policy-rc.d"
# Container fixes (test image only, never a role's business).
install -m 0644 "$here/rootfs/10-container.conf" -D "$dir/etc/systemd/system/service.d/10-container.conf"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' "$mirror" "$mirror" "$security" > "$dir/etc/apt/sources.list"
rm -f "$dir"/etc/ssh/ssh_host_*            # each container makes its own host keys at boot
install -m 0644 "$here/rootfs/ssh-keygen.service" -D "$dir/etc/systemd/system/infra-ssh-keygen.service"
ln -sf /etc/systemd/system/infra-ssh-keygen.service "$dir/etc/systemd/system/multi-user.target.wants/infra-ssh-keygen.service"
install -m 0644 "$here/rootfs/proc-sys-net.service" -D "$dir/etc/systemd/system/infra-proc-sys-net.service"
mkdir -p "$dir/etc/systemd/system/sysinit.target.wants"
ln -sf /etc/systemd/system/infra-proc-sys-net.service "$dir/etc/systemd/system/sysinit.target.wants/infra-proc-sys-net.service"
# Units that do nothing useful in a container and slow boot.
for u in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$dir/etc/systemd/system/$u"
done
echo 'infra-test' > "$dir/etc/hostname"
# The login user of every test host and lab host: key-only, passwordless sudo.
chroot "$dir" useradd --create-home --shell /bin/bash admin
install -d -m 0700 -o "$(chroot "$dir" id -u admin)" -g "$(chroot "$dir" id -g admin)" "$dir/home/admin/.ssh"
install -m 0440 "$here/rootfs/sudoers-admin" "$dir/etc/sudoers.d/admin"
install -m 0644 "$here/rootfs/sshd-infra.conf" "$dir/etc/ssh/sshd_config.d/10-infra.conf"
# The test bed's package cache when it answers (ensure-apt-cache.sh), else the mirror.
install -m 0755 -D "$here/rootfs/apt-proxy-detect" "$dir/usr/local/lib/infra/apt-proxy-detect"
install -m 0644 "$here/rootfs/01infra-apt-proxy" "$dir/etc/apt/apt.conf.d/01infra-apt-proxy"
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
tar -C "$dir" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$tag" >/dev/null
docker tag "$tag" "$name:latest"
echo "build-image: built $tag"
