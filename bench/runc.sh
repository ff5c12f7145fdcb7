#!/usr/bin/env bash
# OCI runtime benchmark on one raw bundle (busybox-static rootfs, `true`): `berth-runc run`
# vs `runc run` vs `crun run`, median wall time of N runs each, and the ratios to crun.
# crun 1.8 refuses this host's hybrid cgroup layout unless hugetlb is mounted, so the script
# mounts it when missing. With --with-docker, also `docker run --runtime R --rm busybox true`
# for R = berth, runc, crun under one dockerd (Debian's docker.io 20.10, started here on its
# own socket and data root, no bridge or iptables; the image is the bundle's rootfs, imported).
# Usage: bench/runc.sh [--runs N] [--debug] [--with-docker]   (--debug: skip the release
# build and time target/debug/berth)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=30; PROFILE=release; WITH_DOCKER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --debug) PROFILE=debug; shift;;
    --with-docker) WITH_DOCKER=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
bash scripts/packages.sh >&2
if [ "$PROFILE" = release ]; then cargo build --release --locked >&2; else cargo build >&2; fi
work=$(mktemp -d /var/tmp/berth-runcbench.XXXXXX)
dockerd_pid=
cleanup() {
  if [ -n "$dockerd_pid" ]; then kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
ln -s "$PWD/target/$PROFILE/berth" "$work/berth-runc"
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for t in sh true; do ln -s busybox "$work/bundle/rootfs/bin/$t"; done
"$work/berth-runc" spec -b "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
s["process"]["terminal"] = False; s["process"]["args"] = ["true"]
s["linux"]["cgroupsPath"] = "/berth-runcbench"
json.dump(s, open(p, "w"))
PY
if [ ! -d /sys/fs/cgroup/hugetlb ] && grep -q hugetlb /proc/cgroups; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb hugetlb /sys/fs/cgroup/hugetlb || true
fi
# Rounds: each runtime once per round, in turn, so that a machine whose speed drifts (a VM)
# weighs on all of them alike; medians over the rounds.
declare -A times
timed() { # $1: label, rest: the command (the round's container ID is appended)
  local label=$1; shift
  local s e; s=$(date +%s%N)
  "$@" "c$round" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; times[$label]+="x "; return 0; }
  e=$(date +%s%N)
  times[$label]+="$(( (e - s) / 1000 )) "
}
median() { # the median of the numbers in $1, or - if any run failed
  case "$1" in *x*) echo -; return;; esac
  printf '%s\n' $1 | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
report() { # $1: heading, rest: labels; the last is the reference
  local heading=$1; shift
  local ref; ref=$(median "${times[${!#}]}")
  echo "$heading"
  for r in "$@"; do
    local v; v=$(median "${times[$r]}")
    if [ "$v" = - ] || [ "$ref" = - ]; then ratio=-; else ratio=$(python3 -c "print(f'{$v/$ref:.2f}')"); fi
    printf '  %-11s %8s µs   x %s: %s\n' "$r" "$v" "${!#}" "$ratio"
  done
}
cd "$work/bundle"
for round in $(seq 1 "$RUNS"); do
  timed berth-runc "$work/berth-runc" --root "$work/s-berth" run
  timed runc runc --root "$work/s-runc" run
  timed crun crun --root "$work/s-crun" run
done
report "runtime run of one bundle (true), median of $RUNS, $PROFILE berth:" berth-runc runc crun

[ $WITH_DOCKER = 1 ] || exit 0
dockerd --iptables=false --bridge=none --add-runtime "berth=$work/berth-runc" \
  --add-runtime crun=/usr/bin/crun --data-root "$work/docker" --exec-root "$work/docker-exec" \
  --pidfile "$work/docker.pid" -H "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST="unix://$work/docker.sock" DOCKER_CONFIG="$work/docker-cli"
for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
tar -C "$work/bundle/rootfs" -c . | docker import - berth-bench-busybox >/dev/null
in_docker() { # $1: runtime, $2: the round's ID (unused)
  docker run --runtime "$1" --rm --network none berth-bench-busybox /bin/true
}
for round in $(seq 1 "$RUNS"); do
  for r in berth runc crun; do timed "docker-$r" in_docker "$r"; done
done
report "docker run --runtime R --rm busybox true under one dockerd, median of $RUNS:" \
  docker-berth docker-runc docker-crun
