#!/usr/bin/env bash
# Image benchmarks: pull, push, save and load of the python stand-in (~240 MB, ~88 MB gzipped)
# over a loopback registry, as medians of N runs, with Docker and Podman side by side when
# asked. Usage: bench/run.sh [--runs N] [--with-podman] [--with-docker]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3; WITH_PODMAN=0; WITH_DOCKER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --with-podman) WITH_PODMAN=1; shift;;
    --with-docker) WITH_DOCKER=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
bash scripts/packages.sh >&2
extra=()
[ $WITH_PODMAN = 1 ] && ! command -v podman >/dev/null && extra+=(podman)
[ $WITH_DOCKER = 1 ] && ! command -v dockerd >/dev/null && extra+=(docker.io)
if [ ${#extra[@]} -gt 0 ]; then apt-get update >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y "${extra[@]}" >&2; fi
cargo build --release --locked >&2
BERTH=$PWD/target/release/berth
work=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}" $(cat "$work/pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  # podman leaves overlay mounts in its stores
  awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$work"
}
trap cleanup EXIT

# A registry holding the fixtures, and one empty registry per push run.
/usr/bin/python3 tests/fixtures/fixtures.py build >/dev/null
/usr/bin/python3 tests/fixtures/fixtures.py serve --state-dir "$work/reg" --ready-file "$work/ready.json" --until-signal >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$work/ready.json" ] && break; sleep 0.2; done
REG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plain"])' "$work/ready.json")
/usr/bin/python3 tests/fixtures/fixtures.py seed --registry "$REG" --only python >/dev/null
IMAGE=$REG/library/python:3.8-slim-buster

empty_registry() { # prints host:port of a fresh registry
  local dir port
  dir=$(mktemp -d "$work/push.XXXX")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/storage}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$dir/config.yml" >/dev/null 2>&1 &
  echo $! >> "$work/pids"   # this runs in a $(…) subshell: pids+=() would be lost
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
  echo "127.0.0.1:$port"
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() { # timeit SETUP CMD... ; runs SETUP then CMD, RUNS times, prints median seconds
  local setup=$1; shift; local t=()
  for _ in $(seq 1 "$RUNS"); do
    eval "$setup"; sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    local s; s=$(now); "$@" >/dev/null 2>"$work/last.err" || { echo "FAILED: $*" >&2; cat "$work/last.err" >&2; exit 1; }; local e; e=$(now)
    t+=("$(echo "$e - $s" | bc -l)")
  done
  printf '%s\n' "${t[@]}" | median
}
command -v bc >/dev/null || { apt-get install -y bc >&2; }

export BERTH_CONFIG=$work/daemon.json; echo '{}' > "$BERTH_CONFIG"
export DOCKER_CONFIG=$work/docker; mkdir -p "$DOCKER_CONFIG"; echo "{}" > "$DOCKER_CONFIG/config.json"
ROOT=$work/berth-root
declare -A R
R[berth_pull]=$(timeit 'rm -rf $ROOT' "$BERTH" --root "$ROOT" pull -q "$IMAGE")
# Keep one pulled store for push/save/load.
"$BERTH" --root "$ROOT" pull -q "$IMAGE" >/dev/null
push_berth() { local r; r=$(empty_registry); "$BERTH" --root "$ROOT" tag "$IMAGE" "$r/bench/python:1" && "$BERTH" --root "$ROOT" push "$r/bench/python:1"; }
R[berth_push]=$(timeit ':' push_berth)
R[berth_save]=$(timeit 'rm -f $work/save.tar' "$BERTH" --root "$ROOT" save -o "$work/save.tar" "$IMAGE")
R[berth_load]=$(timeit 'rm -rf $work/load-root' "$BERTH" --root "$work/load-root" load -i "$work/save.tar")
# A docker-save style archive (uncompressed layers), as Docker's load was measured with.
skopeo copy --src-tls-verify=false "docker://$IMAGE" "docker-archive:$work/docker-style.tar:python:3.8" >/dev/null
R[berth_load_uncompressed]=$(timeit 'rm -rf $work/load-root' "$BERTH" --root "$work/load-root" load -i "$work/docker-style.tar")

if [ $WITH_PODMAN = 1 ]; then
  # Each timed pull or load gets a store of its own: podman's overlay mounts make removing a
  # used store unreliable.
  prun=0
  pnew() { prun=$((prun+1)); P=(podman --root "$work/podman/$prun/root" --runroot "$work/podman/$prun/run" --storage-driver overlay --events-backend none); }
  podman_pull() { "${P[@]}" pull -q --tls-verify=false "$IMAGE"; }
  R[podman_pull]=$(timeit pnew podman_pull)
  pnew; podman_pull >/dev/null; PKEEP=("${P[@]}")
  push_podman() { local r; r=$(empty_registry); "${PKEEP[@]}" push --tls-verify=false "$IMAGE" "docker://$r/bench/python:1"; }
  R[podman_push]=$(timeit ':' push_podman)
  R[podman_save]=$(timeit 'rm -f $work/psave.tar' "${PKEEP[@]}" save -o "$work/psave.tar" "$IMAGE")
  podman_load() { "${P[@]}" load -i "$work/psave.tar"; }
  R[podman_load]=$(timeit pnew podman_load)
fi
if [ $WITH_DOCKER = 1 ]; then
  if ! docker info >/dev/null 2>&1; then
    # Started here, stopped by cleanup (its PID goes with the others).
    dockerd --insecure-registry "$REG" >"$work/dockerd.log" 2>&1 &
    echo $! >>"$work/pids"
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  # Remove by ID, so no other tag of the same image keeps its layers.
  drop_docker='docker images -aq | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true'
  R[docker_pull]=$(timeit "$drop_docker" docker pull -q "$IMAGE")
  R[docker_save]=$(timeit 'rm -f $work/dsave.tar' docker save -o "$work/dsave.tar" "$IMAGE")
  R[docker_load]=$(timeit "$drop_docker" docker load -i "$work/dsave.tar")
fi

echo "operation  engine  seconds (median of $RUNS)"
for k in $(printf '%s\n' "${!R[@]}" | sort); do printf '%-28s %8.3f\n' "$k" "${R[$k]}"; done
for op in pull push save load; do
  for other in docker podman; do
    o=${R[${other}_$op]:-}; b=${R[berth_$op]:-}
    [ -n "$o" ] && [ -n "$b" ] && printf 'berth/%s %s ratio: %.2f\n' "$other" "$op" "$(echo "$b / $o" | bc -l)"
  done
done
