#!/usr/bin/env bash
# The whole test suite: unit tests and integration tests (real registries, real kernel; run
# as root). Fixture images are built on first use and cached in /var/cache/berth-fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/packages.sh
cargo test --workspace --locked 2>&1
