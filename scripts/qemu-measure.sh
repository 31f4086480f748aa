#!/usr/bin/env bash
# On-target comparison: the examples/qemu-mps2 firmware built on ferronet and on embassy-net
# 0.9.1 (same source), measured in QEMU's mps2-an385 with -icount shift=0 (one nanosecond of
# virtual time per guest instruction): .text, .rodata, static RAM, peak stack, guest
# instructions per byte of a TCP echo and per HTTP request. See examples/qemu-mps2/RESULTS.md.
#   ./scripts/qemu-measure.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
command -v qemu-system-arm >/dev/null 2>&1 || { echo "qemu-measure: qemu-system-arm missing" >&2; exit 1; }
fw=$(./scripts/qemu-build.sh)
cd examples/qemu-mps2
CARGO_TARGET_DIR=target/embassy cargo build --release -q --no-default-features --features use-embassy
exec timeout -k 10 1200 python3 host/measure.py --elf "ferronet=$fw" \
    --elf "embassy-net=$PWD/target/embassy/thumbv7m-none-eabi/release/ferronet-qemu-mps2" "$@"
