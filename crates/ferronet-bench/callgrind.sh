#!/usr/bin/env bash
# Instructions per byte / round trip / connection of ferronet, embassy-net 0.9 and the
# no-stack ceiling, counted by callgrind.
#
# Each workload runs alone on one stack (`--workload W --stack S --rounds 1 --size N`) under
# `valgrind --tool=callgrind`, at two sizes S1 < S2, and the table shows
#
#     (Ir(S2) - Ir(S1)) / (S2 - S1)
#
# the instructions one more unit costs: process start-up, stack creation, ARP, connection
# set-up and teardown cancel out. Sizes: bulk 512 KiB and 4 MiB, rr 250 and 2000 round trips,
# churn 25 and 200 connections.
#
# Usage: crates/ferronet-bench/callgrind.sh [WORKLOAD...]   (default: every workload)
#        EXEC=lifo crates/ferronet-bench/callgrind.sh ...  (the benchmark executor polls the most
#        recently woken task first, as embassy-executor does; files go to a lifo/ subfolder)
#
# The callgrind.out files are kept (default target/ferronet-bench-callgrind/, or
# $CALLGRIND_OUT) for `callgrind_annotate`, e.g.
#     callgrind_annotate target/ferronet-bench-callgrind/callgrind.out.tcp_rr.ferronet.2000
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

if ! command -v valgrind >/dev/null; then
    echo "callgrind.sh: valgrind not found (apt-get install valgrind)" >&2
    exit 1
fi

bin=$(cargo build --release -p ferronet-bench --bin ferronet-bench \
    --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ ! -x "$bin" ]; then
    echo "callgrind.sh: could not find the built ferronet-bench binary" >&2
    exit 1
fi
out=${CALLGRIND_OUT:-$root/target/ferronet-bench-callgrind}
exec_order=${EXEC:-sweep}
case "$exec_order" in
sweep) ;;
lifo) out="$out/lifo" ;;
*)
    echo "callgrind.sh: EXEC must be sweep or lifo, not '$exec_order'" >&2
    exit 2
    ;;
esac
mkdir -p "$out"

if [ $# -gt 0 ]; then
    workloads=("$@")
else
    workloads=(tcp_bulk_16k tcp_bulk_64k tcp_rr udp_rr tcp_churn)
fi

sizes() {
    case "$1" in
    tcp_bulk_16k | tcp_bulk_64k) echo "524288 4194304" ;;
    tcp_rr | udp_rr) echo "250 2000" ;;
    tcp_churn) echo "25 200" ;;
    *)
        echo "callgrind.sh: unknown workload '$1'" >&2
        exit 2
        ;;
    esac
}

unit() {
    case "$1" in
    tcp_bulk_*) echo "Ir/byte" ;;
    tcp_churn) echo "Ir/conn" ;;
    *) echo "Ir/RT" ;;
    esac
}

# ir WORKLOAD STACK SIZE: total instructions of one run.
ir() {
    local f="$out/callgrind.out.$1.$2.$3"
    if ! valgrind --tool=callgrind --callgrind-out-file="$f" \
        "$bin" --workload "$1" --stack "$2" --rounds 1 --size "$3" --no-sizes --exec "$exec_order" \
        >"$f.stdout" 2>"$f.log"; then
        echo "callgrind.sh: run failed, see $f.log" >&2
        exit 1
    fi
    # A timer sleep means the run waited on a protocol timer: worth knowing.
    local sleeps
    sleeps=$(awk -F'|' -v w="$1" -v s="$2" \
        '{ gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $6) } $2 == w && $3 == s { print $6 }' \
        "$f.stdout")
    if [ -n "$sleeps" ] && [ "$sleeps" != "0" ]; then
        echo "callgrind.sh: note: $1 on $2 at size $3 slept on a timer $sleeps time(s)" >&2
    fi
    awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

# per_unit WORKLOAD STACK: instructions per unit, or "-".
per_unit() {
    local s1 s2 i1 i2
    read -r s1 s2 <<<"$(sizes "$1")"
    i1=$(ir "$1" "$2" "$s1")
    i2=$(ir "$1" "$2" "$s2")
    awk -v i1="$i1" -v i2="$i2" -v s1="$s1" -v s2="$s2" \
        'BEGIN { v = (i2 - i1) / (s2 - s1); printf (v < 100 ? "%.2f" : "%.0f"), v }'
}

echo "Instructions per unit under callgrind: (Ir(S2) - Ir(S1)) / (S2 - S1); ratio = ferronet / embassy-net (< 1: ferronet cheaper)"
echo "($(valgrind --version); binary $bin; executor order: $exec_order)"
echo
echo "| workload     | unit    | S1 .. S2          | ferronet | embassy-net | ratio | ceiling |"
echo "|--------------|---------|-------------------|---------:|------------:|------:|--------:|"
for w in "${workloads[@]}"; do
    read -r s1 s2 <<<"$(sizes "$w")"
    f=$(per_unit "$w" ferronet)
    e=$(per_unit "$w" embassy)
    if [ "$w" = tcp_churn ]; then
        c="-"
    else
        c=$(per_unit "$w" ceiling)
    fi
    r=$(awk -v f="$f" -v e="$e" 'BEGIN { printf "%.2f", f / e }')
    printf "| %-12s | %-7s | %-17s | %8s | %11s | %5s | %7s |\n" \
        "$w" "$(unit "$w")" "$s1 .. $s2" "$f" "$e" "$r" "$c"
done
echo
echo "callgrind.out files: $out"
