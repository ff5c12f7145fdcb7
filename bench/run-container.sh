#!/usr/bin/env bash
# Container start benchmark: `run --rm busybox true`, median of N runs; 50 detached
# containers started one after another; the monitors' memory (PSS). berth beside docker when
# asked (dockerd must be running). Podman 4.3 from Debian cannot run containers on this
# host (runc refuses its RLIMIT_NOFILE above the host's hard limit), so it is left out.
#
# Where berth keeps its files matters on this machine: its root filesystem is ext4 *without
# a journal*, and there the kernel will not reuse an inode deleted in the last 60-300 s, so
# every file made after a burst of containers scans past the recently deleted ones (perf:
# recently_deleted, find_inode_bit), and each run of this bench slows the next. Users'
# machines have a journaled /var/lib and a tmpfs /run. So by default the store is a fresh
# journaled ext4 (a loop file) and the runroot a tmpfs; --host-fs keeps both on this
# machine's own root filesystem, as before.
# Usage: bench/run-container.sh [--runs N] [--with-docker] [--host-fs]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=20; WITH_DOCKER=0; HOST_FS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --with-docker) WITH_DOCKER=1; shift;;
    --host-fs) HOST_FS=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
bash scripts/packages.sh >&2
cargo build --release --locked >&2
BERTH=$PWD/target/release/berth
work=$(mktemp -d /var/tmp/berth-runbench.XXXXXX)
pids=()
B=("$BERTH")
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -d "$work/berth" ]; then "${B[@]}" rm -f $("${B[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true; fi
  umount "$work/berth" "$work/run" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/berth" "$work/run"
if [ $HOST_FS = 0 ]; then
  truncate -s 4G "$work/store.img"
  mkfs.ext4 -q -F "$work/store.img"
  mount -o loop "$work/store.img" "$work/berth"
  mount -t tmpfs -o size=256m tmpfs "$work/run"
  B+=(--runroot "$work/run")
fi
/usr/bin/python3 tests/fixtures/fixtures.py build --only busybox >/dev/null
/usr/bin/python3 tests/fixtures/fixtures.py serve --state-dir "$work/reg" --ready-file "$work/ready.json" --until-signal >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$work/ready.json" ] && break; sleep 0.2; done
REG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plain"])' "$work/ready.json")
/usr/bin/python3 tests/fixtures/fixtures.py seed --registry "$REG" --only busybox >/dev/null
IMAGE=$REG/library/busybox:latest
export BERTH_CONFIG=$work/daemon.json; echo '{}' > "$BERTH_CONFIG"
B+=(--root "$work/berth")
"${B[@]}" pull -q "$IMAGE" >/dev/null

median_ms() { # median wall time in ms of RUNS runs of the command
  local t=()
  for _ in $(seq 1 "$RUNS"); do
    local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", a[int((NR+1)/2)]/1000}'
}
echo "run --rm busybox true, median ms of $RUNS"
echo "berth (default bridge network)  $(median_ms "${B[@]}" run --rm "$IMAGE" true)"
echo "berth --network none            $(median_ms "${B[@]}" run --rm --network none "$IMAGE" true)"
if [ $WITH_DOCKER = 1 ] && docker info >/dev/null 2>&1; then
  docker pull -q "$IMAGE" >/dev/null
  echo "docker --network none           $(median_ms docker run --rm --network none "$IMAGE" true)"
fi

# 50 detached containers one after another, then what their monitors cost in memory.
fifty() { # $@: extra run flags
  local s e
  s=$(date +%s%N)
  for _ in $(seq 1 50); do "${B[@]}" run -d "$@" "$IMAGE" sleep 300 >/dev/null; done
  e=$(date +%s%N)
  echo "$(( (e - s) / 1000000 ))"
}
pss_kb() { # mean PSS of the running monitors, kB
  local total=0 n=0 p
  for p in $(pgrep -f "container-monitor --detached"); do
    total=$(( total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup") )); n=$(( n + 1 ))
  done
  [ "$n" -gt 0 ] && echo "$(( total / n )) kB over $n monitors" || echo "no monitors"
}
for net in none bridge; do
  ms=$(fifty --network "$net")
  echo "50 detached sleep 300 (--network $net): ${ms} ms; monitor PSS $(pss_kb)"
  "${B[@]}" rm -f $("${B[@]}" ps -aq) >/dev/null
done
if [ $WITH_DOCKER = 1 ] && docker info >/dev/null 2>&1; then
  s=$(date +%s%N)
  for _ in $(seq 1 50); do docker run -d --network none "$IMAGE" sleep 300 >/dev/null; done
  e=$(date +%s%N)
  echo "docker: 50 detached (--network none): $(( (e - s) / 1000000 )) ms"
  docker rm -f $(docker ps -aq) >/dev/null
fi
