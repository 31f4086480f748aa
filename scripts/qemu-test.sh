#!/usr/bin/env bash
# Firmware tests: the examples/qemu-mps2 firmware (ferronet + the LAN9118 driver on an emulated
# Cortex-M3) boots in QEMU's mps2-an385 and is checked from the host by
# examples/qemu-mps2/host/qemu_test.py: DHCP lease, 4 MiB TCP echo each way, 200 HTTP requests
# 8 at a time, link down/up through QEMU's monitor, 20 reboots, and DNS, HTTP fetch, ping and UDP
# echo over a TAP device in a network namespace with dnsmasq (that one needs root).
#
#   ./scripts/qemu-test.sh                 every scenario once
#   QEMU_TEST_RUNS=10 ./scripts/qemu-test.sh http link
#
# Without qemu-system-arm (setup.sh installs it as root) the tests SKIP loudly; under CI=true
# they fail instead. Bounded in time: 30 minutes at most.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

if ! command -v qemu-system-arm >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL qemu-test: qemu-system-arm is not installed (CI=true)" >&2
        exit 1
    fi
    echo "*** SKIP qemu-test: qemu-system-arm is not installed (run scripts/setup.sh as root) ***"
    exit 0
fi

elf=$(./scripts/qemu-build.sh)
exec timeout -k 10 1800 python3 examples/qemu-mps2/host/qemu_test.py --elf "$elf" \
    --runs "${QEMU_TEST_RUNS:-1}" "$@"
