#!/usr/bin/env bash
# Installs what building and testing ferronet needs on a fresh Debian/Ubuntu machine with
# rustup: the pinned toolchain (rust-toolchain.toml) with rustfmt, clippy and the embedded
# targets. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null 2>&1; then
    echo "setup: rustup is required (https://rustup.rs); it is not installed" >&2
    exit 1
fi

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup component add --toolchain "$toolchain" rustfmt clippy >/dev/null
for target in thumbv7em-none-eabihf thumbv7m-none-eabi; do
    rustup target list --toolchain "$toolchain" --installed | grep -qx "$target" ||
        rustup target add --toolchain "$toolchain" "$target"
done
