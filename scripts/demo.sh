#!/usr/bin/env bash
# The main demo: ferronet firmware on an emulated Cortex-M3 (QEMU's mps2-an385 board with its
# LAN9118 Ethernet controller). It builds the firmware, boots it with QEMU's user-mode network
# (restrict=on: nothing leaves QEMU), prints the DHCP lease, fetches the firmware's status page,
# echoes 1 MiB over TCP from the host with every byte checked, and shuts QEMU down.
#
#   ./scripts/demo.sh        the firmware in QEMU
#   ./scripts/demo.sh sim    the simulated-link demo (two stacks in one process, no emulator)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = sim ]; then
    shift
    exec ./scripts/sim-demo.sh "$@"
fi
./scripts/setup.sh
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "demo: qemu-system-arm is missing and could not be installed (scripts/setup.sh installs" >&2
    echo "      it when run as root); ./scripts/demo.sh sim runs the demo without an emulator" >&2
    exit 1
fi
elf=$(./scripts/qemu-build.sh)
# The Python driver kills QEMU on any exit (including Ctrl-C and this timeout's TERM).
exec timeout -k 5 180 python3 examples/qemu-mps2/host/demo.py --elf "$elf"
