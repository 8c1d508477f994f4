#!/usr/bin/env bash
# Builds every cargo-fuzz target of quectel-bg96 and fuzzes each for a bounded time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default: $FUZZ_SECONDS, else 60); 0 only replays the seed corpus (the
# regression inputs among it included), which takes a second. TARGETs default to all of them.
# Exits non-zero if any target crashed, hung (-timeout) or ran out of memory, after printing
# where the input that did it was written and its bytes.
#
# Works on stable Rust: libFuzzer's coverage instrumentation needs no nightly flag, only the
# sanitizers do, so targets are built with `--sanitizer none` (the crate is
# #![forbid(unsafe_code)], so AddressSanitizer would add little). FUZZ_SANITIZER=address turns
# ASan on through RUSTC_BOOTSTRAP=1 (stable's compiler, nightly's flags).
#
# Generated inputs go to a temporary directory, so fuzz/corpus/ keeps only the seeds
# (regenerate them with `python3 fuzz/make_corpus.py`). The target directory is cargo's default
# (fuzz/target) unless CARGO_TARGET_DIR is set.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-${FUZZ_SECONDS:-60}}
shift || true
sanitizer=${FUZZ_SANITIZER:-none}
cargo_fuzz_version=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== $(rustc -V), $(cargo fuzz --version), sanitizer $sanitizer, ${seconds}s per target: ${targets[*]}"
start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer"
echo "== built in $((SECONDS - start))s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    if [ "$seconds" -gt 0 ]; then
        budget=(-max_total_time="$seconds")
    else
        budget=(-runs=0)
    fi
    echo "== $t"
    t0=$SECONDS
    rc=0
    # the first corpus directory takes what the fuzzer finds; the seeds are only read
    cargo fuzz run --sanitizer "$sanitizer" "$t" "$work/$t" "corpus/$t" -- \
        "${budget[@]}" -dict=modem.dict -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$work/$t.log" 2>&1 || rc=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::number_of_executed_units' "$work/$t.log" || true
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        echo "!! $t FAILED (exit $rc) after $((SECONDS - t0))s:"
        # the panic message (or libFuzzer's verdict on a hang or OOM), without the backtrace
        grep -E -A4 'panicked at' "$work/$t.log" | head -n 20 || true
        grep -E 'ERROR: libFuzzer|^SUMMARY|Test unit written|^error' "$work/$t.log" || tail -n 30 "$work/$t.log"
        for f in $(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$work/$t.log"); do
            echo "!! input: $f ($(wc -c <"$f") bytes):"
            od -A d -c "$f" | head -n 64
            echo "!! reproduce: (cd $PWD && cargo fuzz run --sanitizer $sanitizer $t $f)"
        done
    else
        echo "== $t ok in $((SECONDS - t0))s"
    fi
done

echo "== fuzzing done in $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "!! failed: ${failed[*]}"
    exit 1
fi
echo "${#targets[@]} passed, 0 failed"
