#!/usr/bin/env bash
# Installs what building and testing ferronet needs on a fresh Debian/Ubuntu machine with
# rustup: the pinned toolchain (rust-toolchain.toml) with rustfmt, clippy and the embedded
# targets; nightly with Miri and cargo-fuzz. Safe to run again; it only installs what is
# missing.
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

# Nightly with Miri (scripts/miri.sh) and cargo-fuzz (scripts/fuzz.sh). Those scripts say SKIP
# when these are missing (and fail under CI=true), so a failure here is not fatal.
nightly=${FUZZ_TOOLCHAIN:-nightly}
if ! rustup toolchain list | grep -q "^$nightly"; then
    rustup toolchain install "$nightly" --profile minimal ||
        echo "setup: could not install the $nightly toolchain; scripts/miri.sh and scripts/fuzz.sh will say SKIP" >&2
fi
if rustup toolchain list | grep -q "^$nightly"; then
    rustup component add --toolchain "$nightly" miri rust-src >/dev/null ||
        echo "setup: could not add miri to $nightly; scripts/miri.sh will say SKIP" >&2
    if ! cargo "+$nightly" fuzz --version >/dev/null 2>&1; then
        echo "setup: installing cargo-fuzz"
        cargo "+$nightly" install --locked cargo-fuzz ||
            echo "setup: could not install cargo-fuzz; scripts/fuzz.sh will say SKIP" >&2
    fi
fi

# Programs the capture and interop tests use: tshark (reads captures back), and the Linux
# peers of the interop tests. Installed with apt-get when missing and when we may (root or
# passwordless sudo); otherwise those tests say SKIP (and fail under CI=true).
apt_packages=()
command -v tshark >/dev/null 2>&1 || apt_packages+=(tshark)
command -v dnsmasq >/dev/null 2>&1 || apt_packages+=(dnsmasq-base)
command -v radvd >/dev/null 2>&1 || apt_packages+=(radvd)
command -v socat >/dev/null 2>&1 || apt_packages+=(socat)
command -v ping >/dev/null 2>&1 || apt_packages+=(iputils-ping)
command -v ip >/dev/null 2>&1 || apt_packages+=(iproute2)
command -v python3 >/dev/null 2>&1 || apt_packages+=(python3)
# The mDNS responder's interop test (crates/ferronet-tuntap/tests/netns.rs): avahi with a
# D-Bus system bus of its own.
command -v avahi-daemon >/dev/null 2>&1 || apt_packages+=(avahi-daemon)
command -v avahi-resolve >/dev/null 2>&1 || apt_packages+=(avahi-utils)
command -v dbus-daemon >/dev/null 2>&1 || apt_packages+=(dbus-daemon)
# Linux DHCP clients for the DHCP server's interop test (crates/ferronet-tuntap/tests/netns.rs).
command -v busybox >/dev/null 2>&1 || apt_packages+=(busybox)
command -v dhclient >/dev/null 2>&1 || apt_packages+=(isc-dhcp-client)
# The emulator of the firmware demo and tests (examples/qemu-mps2).
command -v qemu-system-arm >/dev/null 2>&1 || apt_packages+=(qemu-system-arm)
if [ ${#apt_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(false); fi
    if [ "${sudo[0]:-}" != false ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${apt_packages[*]}"
        echo "wireshark-common wireshark-common/install-setuid boolean false" |
            "${sudo[@]}" debconf-set-selections 2>/dev/null || true
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${apt_packages[@]}" >/dev/null ||
            { "${sudo[@]}" apt-get update -q >/dev/null &&
                DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${apt_packages[@]}" >/dev/null; } ||
            echo "setup: could not install ${apt_packages[*]}; the tests that need them will say SKIP" >&2
    else
        echo "setup: not root and no sudo: not installing ${apt_packages[*]}; the tests that need them will say SKIP" >&2
    fi
fi
