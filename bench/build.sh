#!/usr/bin/env bash
# Build benchmarks, medians of N runs, with Docker 20.10's legacy builder side by side when
# asked:
#   warm     rebuild of examples/python-flask with everything cached
#   cold     --no-cache build of the same app (pip installs Flask from PyPI in a RUN)
#   warm10k  rebuild of a context of 10,000 small files (`COPY . /app`), everything cached
# The base images come from a loopback fixture registry (Docker's as its docker.io mirror and
# insecure registry, berth's through daemon.json); dockerd is started here on a socket, data
# and exec root of its own, and stopped after.
# Usage: bench/build.sh [--runs N] [--with-docker] [--no-build (use target/release/berth as is)]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=5; WITH_DOCKER=0; BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --with-docker) WITH_DOCKER=1; shift;;
    --no-build) BUILD=0; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
bash scripts/packages.sh >&2
if [ $WITH_DOCKER = 1 ] && ! command -v dockerd >/dev/null; then
  apt-get update >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io >&2
fi
command -v bc >/dev/null || { apt-get install -y bc >&2; }
[ $BUILD = 1 ] && cargo build --release --locked >&2
BERTH=$PWD/target/release/berth
work=$(mktemp -d /var/tmp/berth-buildbench.XXXXXX)
pids=()
cleanup() {
  [ -n "${DOCKER_HOST:-}" ] && docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 tests/fixtures/fixtures.py build --only python,busybox >/dev/null
/usr/bin/python3 tests/fixtures/fixtures.py serve --state-dir "$work/reg" --ready-file "$work/ready.json" --until-signal >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$work/ready.json" ] && break; sleep 0.2; done
REG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plain"])' "$work/ready.json")
/usr/bin/python3 tests/fixtures/fixtures.py seed --registry "$REG" --only python,busybox >/dev/null

# The contexts: the tutorial, and 10,000 files of 100 bytes in 100 folders.
APP=$work/app; cp -a examples/python-flask "$APP"
BIG=$work/big; mkdir -p "$BIG"
python3 - "$BIG" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/d{d:03}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}.txt", "w") as out:
            out.write(f"{d} {f} ".ljust(99, "x") + "\n")
with open(f"{root}/Dockerfile", "w") as out:
    out.write("FROM busybox\nCOPY . /app\n")
PY

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() { # timeit CMD... ; RUNS runs, prints the median in seconds
  local t=()
  for _ in $(seq 1 "$RUNS"); do
    # Output to a file, as the two engines' logs are wanted when a run fails.
    local s e; s=$(now); "$@" >"$work/last.out" 2>"$work/last.err" || { echo "FAILED: $*" >&2; cat "$work/last.err" >&2; exit 1; }; e=$(now)
    t+=("$(echo "$e - $s" | bc -l)")
  done
  printf '%s\n' "${t[@]}" | median
}

export BERTH_CONFIG=$work/daemon.json
echo "{\"registry-mirrors\": [\"http://$REG\"]}" > "$BERTH_CONFIG"
export DOCKER_CONFIG=$work/docker-config; mkdir -p "$DOCKER_CONFIG"; echo "{}" > "$DOCKER_CONFIG/config.json"
B=("$BERTH" --root "$work/berth")
declare -A R
# Each warm case is built once first, so every timed run finds all of it cached.
"${B[@]}" build -q -t app "$APP" >/dev/null
R[berth_warm]=$(timeit "${B[@]}" build -t app "$APP")
R[berth_cold]=$(timeit "${B[@]}" build --no-cache -t app "$APP")
"${B[@]}" build -q -t big "$BIG" >/dev/null
R[berth_warm10k]=$(timeit "${B[@]}" build -t big "$BIG")

if [ $WITH_DOCKER = 1 ]; then
  export DOCKER_HOST=unix://$work/docker.sock DOCKER_BUILDKIT=0
  # Debian's client (20.10) with Debian's daemon, if both are there.
  DOCKER=docker; [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
  docker() { "$DOCKER" "$@"; }
  dockerd -H "$DOCKER_HOST" --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
    --pidfile "$work/docker.pid" --registry-mirror "http://$REG" --insecure-registry "$REG" \
    >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  # The bases are pulled by their registry name and tagged, so no build ever asks Docker Hub.
  for img in library/python:3.8-slim-buster library/busybox:latest; do
    docker pull -q "$REG/$img" >/dev/null
    docker tag "$REG/$img" "${img#library/}"
  done
  docker build -q -t app "$APP" >/dev/null
  R[docker_warm]=$(timeit docker build -t app "$APP")
  R[docker_cold]=$(timeit docker build --no-cache -t app "$APP")
  docker build -q -t big "$BIG" >/dev/null
  R[docker_warm10k]=$(timeit docker build -t big "$BIG")
fi

echo "build  engine  seconds (median of $RUNS)"
for k in $(printf '%s\n' "${!R[@]}" | sort); do printf '%-18s %8.3f\n' "$k" "${R[$k]}"; done
for op in warm cold warm10k; do
  o=${R[docker_$op]:-}; b=${R[berth_$op]:-}
  [ -n "$o" ] && [ -n "$b" ] && printf 'berth/docker %s ratio: %.2f\n' "$op" "$(echo "$b / $o" | bc -l)"
done
exit 0
