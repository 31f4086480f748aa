#!/usr/bin/env bash
# Build the reference firmware against ferronet and embassy-net 0.9, IPv4 and dual stack, for
# thumbv7em-none-eabihf, and print flash/RAM per section, the ratio ferronet / embassy-net,
# the size_of of the public types, and the largest RAM users.
#
# Usage: ./measure.sh [--bloat] [--write]
#   --bloat  also build with symbols and debug info (cargo profile `bloat`, same code) and
#            attribute .text to crates, files and functions (bloat.py; needs python3,
#            llvm-dwarfdump and llvm-symbolizer: apt-get install llvm)
#   --write  also write the output to RESULTS.md (text below the line
#            "<!-- end of generated part -->" in RESULTS.md is kept)
#
# Uses its own target dir (./target) and its own Cargo.lock; never touches the root workspace.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export CARGO_TARGET_DIR="$here/target"
TARGET=thumbv7em-none-eabihf
OUT="$CARGO_TARGET_DIR/measure"
mkdir -p "$OUT"

bloat=0
write=0
for a in "$@"; do
    case "$a" in
        --bloat) bloat=1 ;;
        --write) write=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $a" >&2; exit 2 ;;
    esac
done

# name:features
CONFIGS=(
    "ferronet-v4:use-ferronet"
    "embassy-v4:use-embassy"
    "ferronet-dual:use-ferronet,dual"
    "embassy-dual:use-embassy,dual"
)

# ---------------------------------------------------------------- tools
find_tool() { # find_tool NAME: NAME, NAME-<llvm version>, or rustup's llvm-tools copy
    local n="$1" v sysroot
    if command -v "$n" >/dev/null 2>&1; then echo "$n"; return 0; fi
    for v in $(seq 30 -1 11); do
        if command -v "$n-$v" >/dev/null 2>&1; then echo "$n-$v"; return 0; fi
    done
    sysroot="$(rustc --print sysroot 2>/dev/null || true)"
    for f in "$sysroot"/lib/rustlib/*/bin/"$n"; do
        if [ -x "$f" ]; then echo "$f"; return 0; fi
    done
    return 1
}

SIZE_CMD=""
if command -v arm-none-eabi-size >/dev/null 2>&1; then
    SIZE_CMD="arm-none-eabi-size -A"
elif t="$(find_tool llvm-size)"; then
    SIZE_CMD="$t -A"
elif command -v readelf >/dev/null 2>&1; then
    SIZE_CMD="readelf"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing binutils-arm-none-eabi for arm-none-eabi-size" >&2
    apt-get install -y binutils-arm-none-eabi >/dev/null || { apt-get update >/dev/null && apt-get install -y binutils-arm-none-eabi >/dev/null; }
    SIZE_CMD="arm-none-eabi-size -A"
else
    echo "need arm-none-eabi-size, llvm-size or readelf" >&2
    exit 1
fi
if command -v readelf >/dev/null 2>&1; then READELF=readelf
elif t="$(find_tool llvm-readelf)"; then READELF="$t"
else echo "need readelf (binutils) or llvm-readelf" >&2; exit 1; fi
if command -v arm-none-eabi-nm >/dev/null 2>&1; then NM=arm-none-eabi-nm
elif command -v nm >/dev/null 2>&1; then NM=nm
elif t="$(find_tool llvm-nm)"; then NM="$t"
else echo "need nm (binutils) or llvm-nm" >&2; exit 1; fi

# section_size ELF SECTION -> decimal size (0 if absent)
section_size() {
    local elf="$1" sec="$2"
    if [ "$SIZE_CMD" = readelf ]; then
        local hex
        hex="$("$READELF" -SW "$elf" | sed -E 's/^ *\[ *[0-9]+\] *//' | awk -v s="$sec" '$1 == s { print $5; exit }')"
        echo $(( 16#${hex:-0} ))
    else
        $SIZE_CMD "$elf" | awk -v s="$sec" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
    fi
}

# words ELF SECTION -> the section's little-endian u32 words, decimal, one a line
words() {
    local w
    for w in $("$READELF" -x "$2" "$1" | awk '/^ *0x/ { for (i = 2; i <= 5; i++) if (length($i) == 8) print $i }'); do
        echo $(( 16#${w:6:2}${w:4:2}${w:2:2}${w:0:2} ))
    done
}

# symbol_size ELF REGEX -> size of the first data/bss symbol whose demangled name matches
symbol_size() {
    "$NM" -S -C --radix=d "$1" 2>/dev/null | awk -v re="$2" '
        $3 ~ /^[bBdD]$/ { n = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", n); sub(/::h[0-9a-f]+$/, "", n)
                          if (!f && n ~ re) { print $2 + 0; f = 1 } }
        END { if (!f) print "?" }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%+.1f%%", (a / b - 1) * 100 }'; }

# ---------------------------------------------------------------- build
for c in "${CONFIGS[@]}"; do
    name="${c%%:*}"; feat="${c#*:}"
    echo "building $name (--features $feat)" >&2
    cargo build --quiet --release --bins --features "$feat" >&2
    cp "$CARGO_TARGET_DIR/$TARGET/release/firmware" "$OUT/firmware-$name.elf"
    cp "$CARGO_TARGET_DIR/$TARGET/release/sizes" "$OUT/sizes-$name.elf"
    if [ "$bloat" = 1 ]; then
        cargo build --quiet --profile bloat --bin firmware --features "$feat" >&2
        cp "$CARGO_TARGET_DIR/$TARGET/bloat/firmware" "$OUT/firmware-$name.debug.elf"
    fi
done

# ---------------------------------------------------------------- versions
lock_version() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock; }
dep_version() { # dep_version FEATURES CRATE: the version of CRATE in that build
    cargo tree --quiet --target "$TARGET" --features "$1" --prefix none --format '{p}' -e normal 2>/dev/null |
        awk -v n="$2" '$1 == n { sub(/^v/, "", $2); print $2; exit }'
}
rev="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here" status --porcelain -- ../../ferronet 2>/dev/null)" ]; then rev="$rev + uncommitted changes in crates/ferronet"; fi

report() {
    echo "# Reference firmware: ferronet vs embassy-net, flash and RAM"
    echo
    echo "Generated by \`crates/ferronet-bench/firmware/measure.sh$([ "$bloat" = 1 ] && echo " --bloat")\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "- $(rustc -V), target \`$TARGET\`; profile: opt-level \"z\", fat LTO, codegen-units 1, panic abort, no debug info"
    echo "- ferronet $(lock_version ferronet) (this repository, commit $rev), smoltcp $(dep_version use-ferronet smoltcp)"
    echo "- embassy-net $(lock_version embassy-net) (crates.io), smoltcp $(dep_version use-embassy smoltcp)"
    echo "- embassy-executor $(lock_version embassy-executor), embassy-time $(lock_version embassy-time), cortex-m-rt $(lock_version cortex-m-rt); section sizes by \`${SIZE_CMD%% *}\`"
    echo "- program (src/bin/firmware.rs, identical source for both stacks): DHCPv4, wait for the"
    echo "  configuration, DNS A query for example.com, TCP connect/write/read, UDP bind/send_to;"
    echo "  \`StackResources<3>\`, TCP buffers 2 x 1 KiB, UDP 2 x 512 B; the driver (src/eth.rs) reads"
    echo "  and writes frames through volatile MMIO so that no stack code can be optimised away"
    echo "- v4: features tcp, udp, dns, dhcpv4, proto-ipv4, medium-ethernet; dual: + proto-ipv6 and a"
    echo "  static IPv6 address (ConfigV6::Static)"
    echo
    echo "## Sections (bytes)"
    echo
    echo "| section | ferronet v4 | embassy-net v4 | ratio | ferronet dual | embassy-net dual | ratio |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    declare -A S
    for c in "${CONFIGS[@]}"; do
        name="${c%%:*}"
        for sec in .vector_table .text .rodata .data .bss .uninit; do
            S[$name$sec]="$(section_size "$OUT/firmware-$name.elf" "$sec")"
        done
        S[${name}flash]=$(( S[$name.vector_table] + S[$name.text] + S[$name.rodata] + S[$name.data] ))
        S[${name}ram]=$(( S[$name.data] + S[$name.bss] + S[$name.uninit] ))
    done
    for row in .text .rodata .data .bss "flash:flash (.vector_table + .text + .rodata + .data)" "ram:static RAM (.data + .bss)"; do
        key="${row%%:*}"; label="${row#*:}"
        [ "$key" = "$row" ] && label="\`$key\`"
        a="${S[ferronet-v4$key]}"; b="${S[embassy-v4$key]}"; c2="${S[ferronet-dual$key]}"; d="${S[embassy-dual$key]}"
        echo "| $label | $a | $b | $(ratio "$a" "$b") | $c2 | $d | $(ratio "$c2" "$d") |"
    done
    echo
    echo "Difference in .text: v4 $(( S[ferronet-v4.text] - S[embassy-v4.text] )) bytes ($(pct "${S[ferronet-v4.text]}" "${S[embassy-v4.text]}")), dual $(( S[ferronet-dual.text] - S[embassy-dual.text] )) bytes ($(pct "${S[ferronet-dual.text]}" "${S[embassy-dual.text]}"))."
    echo "The stack is not measured alone: the totals include the executor, time driver, MMIO driver,"
    echo "compiler-builtins and this program (about the same in both builds). The main stack is not in"
    echo ".bss (cortex-m-rt puts it at the top of RAM); peak stack use is not measured."
    echo
    echo "## RAM: the largest statics (bytes)"
    echo
    echo "| static | ferronet v4 | embassy-net v4 | ferronet dual | embassy-net dual |"
    echo "|---|---:|---:|---:|---:|"
    for row in "::RESOURCES\$|\`StaticCell<StackResources<3>>\`" "__embassy_main::POOL\$|main task (its future: sockets, their buffers, DNS/TCP/UDP futures)" "net_task::POOL\$|network task (its future: the Runner, incl. the driver's 2 x 1536 B buffers)"; do
        re="${row%%|*}"; label="${row#*|}"
        line="| $label |"
        for name in ferronet-v4 embassy-v4 ferronet-dual embassy-dual; do
            line="$line $(symbol_size "$OUT/firmware-$name.elf" "$re") |"
        done
        echo "$line"
    done
    echo
    echo "## \`core::mem::size_of\` on $TARGET (bytes)"
    echo
    echo "Method: src/bin/sizes.rs puts \`size_of::<T>()\` of each type into \`#[used] static SIZES: [u32; N]\`"
    echo "in its own ELF section \`.bench_sizes\`, built for the target with the same features; this script"
    echo "reads the section back with \`readelf -x .bench_sizes\`. Nothing runs."
    echo
    echo "| type | ferronet v4 | embassy-net v4 | ferronet dual | embassy-net dual |"
    echo "|---|---:|---:|---:|---:|"
    names=("StackResources<1>" "StackResources<3>" "StackResources<8>" "Stack<'static>"
        "Runner<'static, MmioEth>" "MmioEth (the driver, inside Runner)" "TcpSocket<'static>"
        "UdpSocket<'static>" "Config")
    declare -A W
    for name in ferronet-v4 embassy-v4 ferronet-dual embassy-dual; do
        mapfile -t vals < <(words "$OUT/sizes-$name.elf" .bench_sizes)
        if [ "${#vals[@]}" -ne "${#names[@]}" ]; then
            echo "sizes-$name.elf: expected ${#names[@]} words in .bench_sizes, got ${#vals[@]}" >&2
            exit 1
        fi
        for i in "${!names[@]}"; do W[$name$i]="${vals[$i]}"; done
    done
    for i in "${!names[@]}"; do
        echo "| \`${names[$i]}\` | ${W[ferronet-v4$i]} | ${W[embassy-v4$i]} | ${W[ferronet-dual$i]} | ${W[embassy-dual$i]} |"
    done
    if [ "$bloat" = 1 ]; then
        echo
        echo "## Where the .text goes: IPv4 build"
        echo
        echo "From \`bloat.py\` on the \`bloat\` profile (= release + debug info; its .text is within a few"
        echo "bytes of release: ferronet $(section_size "$OUT/firmware-ferronet-v4.debug.elf" .text), embassy-net $(section_size "$OUT/firmware-embassy-v4.debug.elf" .text))."
        echo
        python3 bloat.py "$OUT/firmware-ferronet-v4.debug.elf" "$OUT/firmware-embassy-v4.debug.elf" --top 25 | sed 's/^###/###/'
        echo
        echo "## Where the .text goes: dual-stack build"
        echo
        python3 bloat.py "$OUT/firmware-ferronet-dual.debug.elf" "$OUT/firmware-embassy-dual.debug.elf" --top 25 --summary
    fi
}

if [ "$write" = 1 ]; then
    marker="<!-- end of generated part -->"
    tail_file="$(mktemp)"
    if [ -f RESULTS.md ] && grep -qF "$marker" RESULTS.md; then
        sed -n "/^$marker\$/,\$p" RESULTS.md >"$tail_file"
    else
        echo "$marker" >"$tail_file"
    fi
    report | tee RESULTS.md.new
    cat "$tail_file" >>RESULTS.md.new
    mv RESULTS.md.new RESULTS.md
    rm -f "$tail_file"
    echo "wrote $here/RESULTS.md" >&2
else
    report
fi
