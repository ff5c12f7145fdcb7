#!/usr/bin/env bash
# The main job: build berth, start the fixture registry as the local docker.io mirror (so
# `FROM python:3.8-slim-buster` resolves offline), then the tutorial: build its Flask app
# (pip install reaches PyPI through the bridge's NAT) and run it answering [1,2,3] on
# localhost:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/packages.sh
cargo build --release --locked
BERTH=$PWD/target/release/berth
state=$PWD/target/demo
mkdir -p "$state"
# The registry keeps running for later commands; reuse it if it is already up.
if ! curl -fs http://127.0.0.1:5050/v2/ >/dev/null 2>&1; then
  /usr/bin/python3 tests/fixtures/fixtures.py build >/dev/null
  rm -f "$state/ready.json"
  nohup /usr/bin/python3 tests/fixtures/fixtures.py serve --state-dir "$state/registry" \
    --ready-file "$state/ready.json" --plain-port 5050 --until-signal >"$state/serve.log" 2>&1 &
  for _ in $(seq 1 300); do [ -f "$state/ready.json" ] && break; sleep 0.2; done
  [ -f "$state/ready.json" ] || { echo "registry did not start; see $state/serve.log" >&2; exit 1; }
  /usr/bin/python3 tests/fixtures/fixtures.py seed --registry 127.0.0.1:5050 --only python,busybox >/dev/null
fi
mkdir -p /etc/berth
if [ ! -f /etc/berth/daemon.json ]; then
  echo '{"registry-mirrors": ["http://127.0.0.1:5050"]}' > /etc/berth/daemon.json
fi
# The tutorial, typed with berth in place of docker.
cd examples/python-flask
"$BERTH" rm -f tutorial >/dev/null 2>&1 || true
"$BERTH" build --tag fintechexplained-python-docker .
"$BERTH" run -d --name tutorial --publish 5000:5000 fintechexplained-python-docker
for _ in $(seq 1 100); do curl -fs http://localhost:5000 >/dev/null && break; sleep 0.1; done
"$BERTH" ps
echo "curl http://localhost:5000 -> $(curl -fs http://localhost:5000)"
