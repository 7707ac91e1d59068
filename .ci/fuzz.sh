#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of the decoder with cargo-afl (AFL++) on stable Rust.
#
#   AFL_FUZZ_SECONDS=60 .ci/fuzz.sh        # seconds per target (default 60; 0 = build only)
#
# Installs cargo-afl if it is missing (it builds AFL++ itself), builds the targets of
# fuzz/ with AFL instrumentation, runs each from its seed corpus in fuzz/corpus/<target>
# for AFL_FUZZ_SECONDS (both at once when there are two or more cores), prints the
# statistics, copies any crash into fuzz/regressions/ (replayed by tests/it/robustness.rs)
# and exits 1 if there was one. Hangs are reported and kept in fuzz/out/ only; set
# AFL_FAIL_ON_HANGS=1 to fail on them too. Works as root, without a terminal.
#
# Other knobs: AFL_TARGETS (default "fuzz_container fuzz_decode fuzz_jpeg fuzz_model fuzz_torch"), AFL_TIMEOUT_MS
# (per-execution timeout, default 2000), AFL_MEM_MB (address-space limit of the target,
# default 4096), AFL_PARALLEL (default 1 when nproc >= 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ=$ROOT/fuzz

SECS=${AFL_FUZZ_SECONDS:-60}
TARGETS=${AFL_TARGETS:-fuzz_container fuzz_decode fuzz_jpeg fuzz_model fuzz_torch}
TIMEOUT_MS=${AFL_TIMEOUT_MS:-2000}
MEM_MB=${AFL_MEM_MB:-4096}
if [ -z "${AFL_PARALLEL:-}" ]; then
    if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then AFL_PARALLEL=1; else AFL_PARALLEL=0; fi
fi
export CARGO_TERM_COLOR=never

now() { date +%s; }
t_start=$(now)
log() { echo "[fuzz.sh +$(($(now) - t_start))s] $*"; }

# --- 1. cargo-afl (and the AFL++ it builds) -------------------------------------------
if ! command -v cargo-afl >/dev/null 2>&1; then
    log "installing cargo-afl from crates.io (builds AFL++; about a minute or two)"
    t0=$(now)
    cargo install --locked cargo-afl
    log "cargo-afl installed in $(($(now) - t0))s"
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Builds AFL++ for the current toolchain when it is not there yet (cargo install does it
# for the toolchain it ran with; a newer toolchain needs this). "already built" is fine.
cfg_log=$(mktemp)
if ! cargo afl config --build >"$cfg_log" 2>&1; then
    grep -q "already built" "$cfg_log" || { cat "$cfg_log" >&2; exit 1; }
fi
rm -f "$cfg_log"
log "$(cargo afl --version)"

# --- 2. instrumented build ---------------------------------------------------------------
t0=$(now)
bins=()
for t in $TARGETS; do bins+=(--bin "$t"); done
(cd "$FUZZ" && cargo afl build --release "${bins[@]}")
log "targets built in $(($(now) - t0))s"

if [ "$SECS" -le 0 ]; then
    log "AFL_FUZZ_SECONDS=$SECS: build only"
    exit 0
fi

# --- 3. fuzz -----------------------------------------------------------------------------
# Headless and unprivileged-friendly: no UI, no CPU governor or core_pattern checks (CI
# containers cannot change them), no CPU pinning (cores may be shared or restricted).
export AFL_NO_UI=1
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=1
export AFL_FORKSRV_INIT_TMOUT=${AFL_FORKSRV_INIT_TMOUT:-30000}
# One decoder thread per execution (see fuzz/src/bin/fuzz_decode.rs).
export RAYON_NUM_THREADS=1
unset AFL_AUTORESUME || true

OUT=$FUZZ/out
rm -rf "$OUT"
mkdir -p "$OUT" "$FUZZ/regressions"

run_one() {
    local t=$1
    local corpus=$FUZZ/corpus/$t
    [ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || {
        echo "no seed corpus in $corpus (run: cd fuzz && cargo run --release --bin make_corpus," \
            "or python fuzz/make_jpeg_corpus.py for fuzz_jpeg)" >&2
        return 2
    }
    # A target's own dictionary (fuzz/<target>.dict) when there is one, else icm.dict.
    local dict=$FUZZ/icm.dict
    [ -f "$FUZZ/$t.dict" ] && dict=$FUZZ/$t.dict
    cargo afl fuzz -V "$SECS" -t "$TIMEOUT_MS" -m "$MEM_MB" -x "$dict" \
        -i "$corpus" -o "$OUT/$t" -- "$FUZZ/target/release/$t" \
        </dev/null >"$OUT/$t.log" 2>&1
}

log "fuzzing ${TARGETS// /, } for ${SECS}s each (parallel=$AFL_PARALLEL)"
t0=$(now)
status=0
if [ "$AFL_PARALLEL" = 1 ]; then
    pids=()
    for t in $TARGETS; do
        run_one "$t" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || status=$?; done
else
    for t in $TARGETS; do run_one "$t" || status=$?; done
fi
log "fuzzing took $(($(now) - t0))s"

# --- 4. results --------------------------------------------------------------------------
stat() { sed -n "s/^$1 *: *//p" "$2" 2>/dev/null | head -n1; }
crashes=0
hangs=0
for t in $TARGETS; do
    st=$OUT/$t/default/fuzzer_stats
    if [ ! -f "$st" ]; then
        echo "== $t: afl-fuzz produced no statistics; its log:" >&2
        tail -n 40 "$OUT/$t.log" >&2 || true
        status=1
        continue
    fi
    echo "== $t: execs_done=$(stat execs_done "$st") execs_per_sec=$(stat execs_per_sec "$st")" \
        "run_time=$(stat run_time "$st")s corpus_count=$(stat corpus_count "$st")" \
        "bitmap_cvg=$(stat bitmap_cvg "$st") stability=$(stat stability "$st")" \
        "saved_crashes=$(stat saved_crashes "$st") saved_hangs=$(stat saved_hangs "$st")"
    for f in "$OUT/$t"/default/crashes/id:*; do
        [ -f "$f" ] || continue
        name="$t-$(sha256sum "$f" | cut -c1-16)"
        cp "$f" "$FUZZ/regressions/$name"
        echo "   CRASH: fuzz/regressions/$name (from ${f#"$ROOT"/})"
        crashes=$((crashes + 1))
    done
    for f in "$OUT/$t"/default/hangs/id:*; do
        [ -f "$f" ] || continue
        echo "   hang: ${f#"$ROOT"/}"
        hangs=$((hangs + 1))
    done
done

log "done: $crashes crash(es), $hangs hang(s)"
if [ "$crashes" -gt 0 ]; then
    echo "Fuzzing found crashes; they are in fuzz/regressions/. Reproduce with:" >&2
    echo "  RUST_BACKTRACE=1 fuzz/target/release/<target> < fuzz/regressions/<file>" >&2
    exit 1
fi
if [ "$hangs" -gt 0 ] && [ "${AFL_FAIL_ON_HANGS:-0}" = 1 ]; then
    exit 1
fi
exit "$status"
