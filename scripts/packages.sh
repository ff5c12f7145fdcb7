#!/usr/bin/env bash
# Installs the Debian packages berth's demo and tests need (idempotent; skips apt when all
# are present, so repeated runs stay fast and work offline).
set -euo pipefail
PACKAGES=(docker-registry mmdebstrap busybox-static skopeo podman apache2-utils zstd attr curl
          openssl ca-certificates util-linux gzip tar python3 libseccomp-dev pkg-config iproute2 nftables
          tini procps docker-compose python3-docker python3-pip runc crun containerd docker.io
          qemu-system-x86)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Packages with services (docker.io, containerd) are installed as tools for tests that
  # start their own instances: no service may start on this machine (a dockerd of the
  # system's would change its firewall).
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
  fi
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
  if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# testcontainers (one of the Engine API's judges) is not packaged by Debian: from PyPI, into
# a folder of its own that only its test puts on PYTHONPATH.
PYDIR=/var/cache/berth-fixtures/python
if [ ! -d "$PYDIR/testcontainers" ]; then
  mkdir -p "$PYDIR"
  /usr/bin/python3 -m pip install -q --disable-pip-version-check --target "$PYDIR" testcontainers==4.8.2 >&2
fi
