#!/usr/bin/env bash
# Builds the qemu-mps2 firmware (release) and prints the path of its ELF image.
# Needs the thumbv7m-none-eabi target (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../examples/qemu-mps2"
cargo build --release -q "$@" >&2
echo "$PWD/target/thumbv7m-none-eabi/release/ferronet-qemu-mps2"
