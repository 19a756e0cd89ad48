#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 600), one after another,
# starting from a copy of its seed corpus; logs to /tmp/certmill-fuzz/<target>.log and prints
# libFuzzer's last status line per target. Crashes land in fuzz/artifacts/<target>/.
#
#   RUSTC_BOOTSTRAP=1 fuzz/run-all.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(profile_json csv_batch csr_der csr_bundle pkcs12_round_trip ocsp_request filter_expr)
fi
declare -A max_len=([profile_json]=8192 [csv_batch]=4096 [csr_der]=4096 [csr_bundle]=16384
    [pkcs12_round_trip]=4096 [ocsp_request]=1024 [filter_expr]=512)
work=/tmp/certmill-fuzz
mkdir -p "$work"
for t in "${targets[@]}"; do
    rm -rf "${work:?}/$t" && mkdir -p "$work/$t" && cp corpus/"$t"/* "$work/$t/"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O ${CARGO_TARGET_DIR:+--target-dir "$CARGO_TARGET_DIR"} "$t" "$work/$t" -- \
        -max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$work/$t.log" 2>&1
    status=$?
    echo "$t: exit $status; $(grep -E '^#[0-9]+' "$work/$t.log" | tail -1)"
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$work/$t.log"
    echo "  corpus grew to $(ls "$work/$t" | wc -l) inputs"
done
