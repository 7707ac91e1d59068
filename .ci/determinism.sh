#!/usr/bin/env bash
# Cross-build determinism of the normative decoding path (spec 2.6, issue 6).
#
#   .ci/determinism.sh
#
# Builds `icm` four ways and decodes the whole conformance suite with each build on 1 and
# on 2 threads, then requires that every run passes and that all runs report the same
# latent SHA-256 (Annex A) for every decodable vector:
#
#   debug        cargo build            (dev profile: opt-level 1, dependencies at 2)
#   release      cargo build --release  (the rustc default target CPU, x86-64)
#   x86-64       RUSTFLAGS='-C target-cpu=x86-64'    (explicit baseline: SSE2 only)
#   x86-64-v3    RUSTFLAGS='-C target-cpu=x86-64-v3' (AVX2, FMA, BMI2), or 'native' when
#                this CPU lacks one of those features (the line says which)
#
# The RUSTFLAGS builds use their own target directories under target/determinism/ so they
# do not invalidate the ordinary build. Prints one line per run and a summary; exits 1 on
# any difference or failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
OUT=$(mktemp -d "${TMPDIR:-/tmp}/icm-determinism.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

v3_cpu=x86-64-v3
for f in avx2 fma bmi2; do
    if ! grep -qw "$f" /proc/cpuinfo 2>/dev/null; then v3_cpu=native; fi
done

declare -a NAMES BINS
build() { # build NAME TARGET_DIR RUSTFLAGS PROFILE_ARGS...
    local name=$1 dir=$2 flags=$3
    shift 3
    local t0=$SECONDS
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo build -q --bin icm "$@"
    local sub=debug
    [ "${1:-}" = --release ] && sub=release
    NAMES+=("$name")
    BINS+=("$dir/$sub/icm")
    echo "determinism: built $name (RUSTFLAGS='$flags') in $((SECONDS - t0)) s"
}

build debug target "${RUSTFLAGS:-}"
build release target "${RUSTFLAGS:-}" --release
build x86-64 target/determinism/x86-64 "-C target-cpu=x86-64" --release
build "$v3_cpu" target/determinism/"$v3_cpu" "-C target-cpu=$v3_cpu" --release

status=0
for i in "${!NAMES[@]}"; do
    for threads in 1 2; do
        run="${NAMES[$i]}-t$threads"
        if ! "${BINS[$i]}" conformance --threads "$threads" --json >"$OUT/$run.json"; then
            echo "determinism: $run: the conformance suite failed"
            status=1
        fi
        python3 - "$OUT/$run.json" >"$OUT/$run.hashes" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for v in report["vectors"]:
    if v.get("latents_sha256"):
        print(v["name"], v["latents_sha256"])
print(f"# {report['passed']} passed, {report['failed']} failed")
PY
        echo "determinism: $run: $(tail -n 1 "$OUT/$run.hashes" | tr -d '#'), $(grep -vc '^#' "$OUT/$run.hashes") latent hashes"
    done
done

# Every decodable vector must have produced a hash, or identical lists would prove nothing.
want=$(python3 -c 'import json,sys; print(sum(1 for v in json.load(open(sys.argv[1]))["vectors"] if v.get("latents_sha256")))' conformance/vectors.json)
for f in "$OUT"/*.hashes; do
    got=$(grep -vc '^#' "$f" || true)
    if [ "$got" != "$want" ] || [ "$want" = 0 ]; then
        echo "determinism: $(basename "$f" .hashes): $got latent hashes, expected $want"
        status=1
    fi
done

first="${NAMES[0]}-t1"
for f in "$OUT"/*.hashes; do
    if ! diff -q "$OUT/$first.hashes" "$f" >/dev/null; then
        echo "determinism: $(basename "$f" .hashes) differs from $first:"
        diff "$OUT/$first.hashes" "$f" | head -20
        status=1
    fi
done
if [ "$status" = 0 ]; then
    echo "determinism: all $(ls "$OUT"/*.hashes | wc -l) runs gave identical latent hashes"
else
    echo "determinism: FAILED"
fi
exit "$status"
