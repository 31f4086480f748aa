#!/usr/bin/env bash
# Checks that the one-line adoption of ferronet works: a small project that depends on
# embassy-net 0.9 (directly, and through sntpc-net-embassy, a crate of the ecosystem that
# depends on it) and adds
#
#     [patch.crates-io]
#     embassy-net = { path = ".../crates/embassy-net-compat" }     (then: git = "file://...")
#
# resolves embassy-net to this repository's compatibility package everywhere in its graph
# (`cargo tree -i embassy-net`), with no other embassy-net left, and compiles against it.
# It also checks that every cargo feature of embassy-net 0.9.1 (as `cargo info` lists them) is
# forwarded to ferronet's feature of the same name. The git variant clones the repository's
# committed HEAD, as a user's git patch would; it is
# skipped (loudly) when the repository is not a git checkout.
#
# Prints `PASS name` / `FAIL name: reason` per check; exits 1 if any failed.
# Needs crates.io (the index and the project's dependencies), like any cargo build.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T=$(mktemp -d /tmp/fnet-compat.XXXXXX)
trap 'rm -rf "$T"' EXIT
# Keep the small project's build products between runs (ignored by git).
export CARGO_TARGET_DIR="$ROOT/target/compat-check"

failed=0 npass=0 nfail=0
pass() {
    echo "PASS $1"
    npass=$((npass + 1))
}
fail() {
    echo "FAIL $1: $2"
    failed=1
    nfail=$((nfail + 1))
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' crates/embassy-net-compat/Cargo.toml)

# project NAME PATCH: writes a project in $T/NAME whose patch entry is PATCH.
project() {
    mkdir -p "$T/$1/src"
    cat >"$T/$1/Cargo.toml" <<TOML
[package]
name = "compat-check-$1"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
embassy-net = { version = "0.9", features = ["tcp", "udp", "dns", "proto-ipv4", "medium-ethernet"] }
sntpc-net-embassy = { version = "0.11", default-features = false }

[patch.crates-io]
embassy-net = $2
TOML
    # Uses embassy-net's API by embassy-net's names; compiles only if the patch is in force
    # (`TcpSocket::try_new` and `SocketTableFull` exist only in ferronet).
    cat >"$T/$1/src/main.rs" <<'RS'
use embassy_net::tcp::TcpSocket;
use embassy_net::{Config, SocketTableFull, Stack, StackResources};

/// Opens a TCP socket on a ferronet stack through embassy-net's names.
pub fn open<'a>(stack: Stack<'a>, rx: &'a mut [u8], tx: &'a mut [u8]) -> Result<TcpSocket<'a>, SocketTableFull> {
    let _ = Config::default();
    let _ = core::mem::size_of::<StackResources<2>>();
    TcpSocket::try_new(stack, rx, tx)
}

fn main() {}
RS
}

# check NAME SOURCE_REGEX: the tree and the build of project NAME.
check() {
    local name=$1 want=$2 tree
    if ! tree=$(cd "$T/$name" && timeout 600 cargo tree -q -i embassy-net -e normal 2>"$T/$name.err"); then
        fail "$name" "cargo tree: $(tail -n 3 "$T/$name.err" | tr '\n' ' ')"
        return
    fi
    echo "$tree" | sed 's/^/    /'
    if ! echo "$tree" | head -n 1 | grep -qE "^embassy-net v$version \($want"; then
        fail "$name" "embassy-net does not resolve to the compatibility package: $(echo "$tree" | head -n 1)"
        return
    fi
    if ! echo "$tree" | grep -q '── sntpc-net-embassy v'; then
        fail "$name" "sntpc-net-embassy does not depend on the compatibility package"
        return
    fi
    if grep -q '^name = "embassy-net"' "$T/$name/Cargo.lock" &&
        [ "$(grep -c '^name = "embassy-net"$' "$T/$name/Cargo.lock")" != 1 ]; then
        fail "$name" "more than one embassy-net in Cargo.lock"
        return
    fi
    if ! (cd "$T/$name" && timeout 900 cargo check -q 2>"$T/$name.err"); then
        fail "$name" "cargo check: $(grep -m1 -A5 '^error' "$T/$name.err" | tr '\n' ' ')"
        return
    fi
    pass "$name"
}

# Every cargo feature of embassy-net 0.9.1 exists in the compatibility package, forwarded to
# ferronet's feature of the same name.
compat_features() {
    sed -n '/^\[features\]/,/^\[/p' crates/embassy-net-compat/Cargo.toml
}
upstream=$(cd "$T" && timeout 120 cargo info -q embassy-net@0.9.1 2>/dev/null |
    awk '/^features:/ {f = 1; next} f && /^[a-z]/ {f = 0} f {sub(/^ *\+?/, ""); split($0, a, " "); print a[1]}')
if [ -z "$upstream" ]; then
    fail features "cargo info embassy-net@0.9.1 listed no features"
else
    missing=""
    for f in $upstream; do
        compat_features | grep -qx "$f = \[\"ferronet/$f\"\]" || missing="$missing $f"
    done
    if [ -z "$missing" ]; then
        pass "features (all $(echo "$upstream" | wc -l) of embassy-net 0.9.1's, each to ferronet's of the same name)"
    else
        fail features "not forwarded:$missing"
    fi
fi

project path "{ path = \"$ROOT/crates/embassy-net-compat\" }"
check path "$ROOT/crates/embassy-net-compat\)"

if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null; then
    project git "{ git = \"file://$ROOT\" }"
    check git "file://$ROOT"
else
    printf '\n!!!!!!!! SKIP compat git patch: %s is not a git checkout !!!!!!!!\n\n' "$ROOT"
    [ "${CI:-}" != true ] || fail git "CI=true and no git checkout"
fi

echo "compat-check: $npass passed, $nfail failed"
exit $failed
