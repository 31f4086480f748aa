#!/usr/bin/env bash
# On-target check of ferronet-lan9118 under QEMU (mps2-an385 + LAN9118, user-mode network
# with restrict=on: nothing leaves QEMU). Builds the check firmware in this directory, boots
# it, and exits with its verdict. Needs qemu-system-arm and the thumbv7m-none-eabi target:
# without them it prints SKIP and exits 0, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")"

missing=""
command -v qemu-system-arm >/dev/null || missing="qemu-system-arm (apt-get install qemu-system-arm)"
command -v python3 >/dev/null || missing="${missing:+$missing, }python3"
if ! rustc --print sysroot >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print sysroot)/lib/rustlib/thumbv7m-none-eabi" ]; then
    missing="${missing:+$missing, }the thumbv7m-none-eabi target (rustup target add thumbv7m-none-eabi)"
fi
if [ -n "$missing" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "FAIL: ferronet-lan9118 qemu-check needs $missing" >&2
        exit 1
    fi
    echo "*** SKIP ferronet-lan9118 qemu-check: missing $missing ***"
    exit 0
fi

cargo build --release --quiet
# run.py boots it (bounded: 60 s) and pulls QEMU's virtual cable when the firmware asks.
exec python3 run.py target/thumbv7m-none-eabi/release/ferronet-lan9118-qemu-check
