#!/usr/bin/env bash
# Every test: formatting, lints, unit/integration/doc tests, and the no_std builds for
# Cortex-M (thumbv7em-none-eabihf, no allocator) across the feature sets firmware uses.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

# Every ferronet feature but the loggers (defmt and log exclude each other).
ALL_FEATURES="tcp,tcp-listener,udp,raw,icmp,auto-icmp-echo-reply,dns,mdns,mdns-responder,dhcpv4,dhcpv4-hostname,proto-ipv4,proto-ipv6,slaac,medium-ethernet,medium-ip,medium-ieee802154,multicast,igmp,counters,dhcpv4-server"

step() { printf '\n=== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy (ferronet, embedded feature sets)"
while read -r features; do
    [ -n "$features" ] || continue
    cargo clippy -q -p ferronet --no-default-features --features "$features" -- -D warnings
done < scripts/feature-sets.txt

step "no_std builds for thumbv7em-none-eabihf (no allocator)"
while read -r features; do
    [ -n "$features" ] || continue
    echo "  ferronet [$features]"
    cargo build -q -p ferronet --target thumbv7em-none-eabihf --no-default-features --features "$features"
done < scripts/feature-sets.txt

step "rustdoc (all features, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -q -p ferronet --no-deps --features "$ALL_FEATURES,log"

step "tests and doctests"
cargo test --workspace
# A driver whose medium is not enabled: needs a build without medium-ieee802154.
cargo test -q -p ferronet --no-default-features --features tcp,proto-ipv4,medium-ethernet --test medium

# IPv4 fragmentation and reassembly (a cargo feature of the tests crate).
cargo test -q -p ferronet-integration --test mtu --features ipv4-fragmentation

step "host examples (examples/std, a workspace of its own): fmt, clippy, tests"
cargo fmt --manifest-path examples/std/Cargo.toml -- --check
cargo clippy -q --manifest-path examples/std/Cargo.toml --all-targets -- -D warnings
cargo clippy -q --manifest-path examples/std/Cargo.toml --all-targets --features ipv4-fragmentation -- -D warnings
cargo test -q --manifest-path examples/std/Cargo.toml

step "interop tests against Linux (network namespaces)"
./scripts/interop.sh

step "firmware in QEMU: the LAN9118 driver on target, then the qemu-mps2 firmware scenarios"
(cd examples/qemu-mps2 && cargo fmt -- --check && cargo clippy -q --release -- -D warnings)
./crates/ferronet-lan9118/qemu-check/run.sh
./scripts/qemu-test.sh

step "embassy-net compatibility package: a patched project resolves to ferronet"
./scripts/compat-check.sh

step "ecosystem crates on ferronet against Linux programs (network namespaces)"
./scripts/ecosystem.sh

step "Miri on the tests that exercise ferronet's unsafe code"
./scripts/miri.sh

step "fuzz targets, a short bounded run each"
./scripts/fuzz.sh 20
