#!/usr/bin/env bash
# Installs the Debian packages Ferry's drivers, tests and testbed use.
# Idempotent and quiet: apt runs only when a package is missing.
# Never lets a package start a daemon on the host: a dockerd started with its
# defaults would rewrite the machine's firewall (see ../shared/TESTBED.md).
set -euo pipefail

PACKAGES=(
  docker.io          # dockerd + docker client: node engines, service-private engines
  btrfs-progs        # btrfs sync driver, testbed disks
  rsync              # rsync sync driver
  zstd               # compress = zstd on the wire (btrfs, docker)
  lz4                # compress = lz4 on the wire
  openssh-server     # testbed nodes' sshd
  openssh-client     # ssh transport for rsync, testbed checks
  busybox-static     # tiny local test images (no registry is reachable)
  iproute2           # netns, veth, bridge, macvlan, tc netem
  util-linux         # unshare, nsenter, losetup, mount
  procps             # ps, pkill-free process listing
  iputils-ping       # duplicate-address probe before an ip resource starts
  nftables           # testbed partitions
  python3-venv       # make test's virtualenv
  chromium           # the console's browser tests (playwright drives it; no download)
  fonts-dejavu-core  # text in the console's screenshots
  prometheus         # promtool checks /metrics in the unit tests (policy-rc.d: no server starts)
  systemd            # systemd-analyze verify checks systemd/*.service (systemd need not be PID 1)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "host-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 0
fi

# policy-rc.d stops maintainer scripts from starting dockerd/sshd on the host.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT

echo "host-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
