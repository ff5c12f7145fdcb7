#!/usr/bin/env bash
# Engine API benchmark: `docker run --rm busybox true` through `berth serve` and, with
# --with-docker, through Debian's dockerd on this machine; and a docker-py
# create + start + wait + remove round trip through both. Medians of N runs, milliseconds.
# Usage: bench/serve.sh [--runs N] [--with-docker]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=21; WITH_DOCKER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --with-docker) WITH_DOCKER=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
bash scripts/packages.sh >&2
[ $WITH_DOCKER = 1 ] && ! command -v dockerd >/dev/null && apt-get install -y docker.io >&2
cargo build --release --locked >&2
BERTH=$PWD/target/release/berth
work=$(mktemp -d /var/tmp/berth-servebench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 tests/fixtures/fixtures.py build --only busybox >/dev/null
/usr/bin/python3 tests/fixtures/fixtures.py serve --state-dir "$work/reg" --ready-file "$work/ready.json" --until-signal >"$work/reg.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$work/ready.json" ] && break; sleep 0.2; done
REG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plain"])' "$work/ready.json")
/usr/bin/python3 tests/fixtures/fixtures.py seed --registry "$REG" --only busybox >/dev/null
export BERTH_CONFIG=$work/daemon.json
echo "{\"registry-mirrors\": [\"http://$REG\"]}" > "$BERTH_CONFIG"
"$BERTH" --root "$work/berth" serve -H "unix://$work/berth.sock" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$work/berth.sock" ] && break; sleep 0.1; done

median_ms() { # median wall time in ms of RUNS runs of the command
  local t=()
  for _ in $(seq 1 "$RUNS"); do
    local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", a[int((NR+1)/2)]/1000}'
}
PY='
import docker, sys, time
c = docker.DockerClient(base_url=sys.argv[1])
times = []
for _ in range(int(sys.argv[2])):
    s = time.perf_counter()
    ct = c.containers.create("busybox", "true")
    ct.start(); ct.wait(); ct.remove()
    times.append((time.perf_counter() - s) * 1000)
times.sort()
print("%.1f" % times[len(times) // 2])
'
bench() { # $1: label, $2: DOCKER_HOST
  DOCKER_HOST=$2 docker pull -q busybox >/dev/null
  echo "$1: docker run --rm busybox true: $(DOCKER_HOST=$2 median_ms docker run --rm busybox true) ms"
  echo "$1: docker-py create+start+wait+remove: $(/usr/bin/python3 -c "$PY" "$2" "$RUNS") ms"
}
bench "berth serve" "unix://$work/berth.sock"
if [ $WITH_DOCKER = 1 ]; then
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" -H "unix://$work/docker.sock" \
    --pidfile "$work/docker.pid" --registry-mirror "http://$REG" --insecure-registry "$REG" \
    >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do DOCKER_HOST="unix://$work/docker.sock" docker info >/dev/null 2>&1 && break; sleep 0.2; done
  bench "dockerd" "unix://$work/docker.sock"
fi
