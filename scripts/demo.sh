#!/usr/bin/env bash
# The main demo: two ferronet stacks over a simulated lossy Ethernet link exchange TCP and UDP.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release -q -p ferronet-examples --bin sim-demo -- "$@"
