#!/usr/bin/env bash
# The simulated-link demo: two ferronet stacks over a simulated lossy Ethernet link exchange TCP
# and UDP (no emulator needed). Also reachable as `./scripts/demo.sh sim`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# ferronet-sim's example: it runs on the simulator's virtual clock (see its header).
exec cargo run --release -q -p ferronet-sim --example sim-demo -- "$@"
