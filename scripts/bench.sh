#!/usr/bin/env bash
# The performance comparison with embassy-net 0.9, in one command (a benchmark, not a test:
# it checks data integrity only, never a time):
#   1. throughput, median of 5 alternating rounds, and size_of tables (x86_64);
#   2. instructions per byte / round trip / connection under callgrind (repeatable);
#   3. flash and RAM of the reference firmware for thumbv7em-none-eabihf.
# Usage: ./scripts/bench.sh [--quick]   (--quick: one short round of each workload only)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

if [ "${1:-}" = "--quick" ]; then
    exec cargo run -q --release -p ferronet-bench -- --quick
fi

echo "=== throughput and memory (x86_64)"
cargo run -q --release -p ferronet-bench
echo
echo "=== memory without alloc (as on firmware), x86_64"
cargo run -q --release -p ferronet-bench --no-default-features -- --sizes-only
echo
echo "=== instructions per unit (callgrind)"
if command -v valgrind >/dev/null 2>&1; then
    crates/ferronet-bench/callgrind.sh
    echo
    echo "=== instructions per unit (callgrind), executor polling the last woken task first"
    EXEC=lifo crates/ferronet-bench/callgrind.sh
    echo
    echo "=== where the instructions go"
    python3 crates/ferronet-bench/breakdown.py
else
    echo "SKIP callgrind: valgrind not installed (apt-get install valgrind)"
fi
echo
echo "=== reference firmware, thumbv7em-none-eabihf"
crates/ferronet-bench/firmware/measure.sh
