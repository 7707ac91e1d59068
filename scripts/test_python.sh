#!/usr/bin/env bash
# The Python part of the test suite (called by scripts/test.sh): the training recipe in
# models/training/ end to end on CPU, and the consistency of the shipped model zoo.
#
#   1. the venv at ${ICM_VENV:-$HOME/.cache/icm-venv} with every requirement of the tests,
#      installed by scripts/setup_test_env.sh (which scripts/test.sh runs first; a no-op of a
#      few seconds once satisfied; torch from PyPI is the large CUDA build, a few GiB).
#   2. models/training/make_manifest.py --check (models/MANIFEST.json matches the files)
#   3. in a temporary folder: prepare_data.py on 4 images of ../shared/data/train, train.py
#      from scratch for 2 steps on CPU (64x64 crops), train.py --init-model from the shipped
#      models/icm-psnr-q1.safetensors for 1 step, export.py of that checkpoint,
#      `cargo run --release -- model build`, `icm encode` + `icm decode` with the built model,
#      and the model file loaded back into PyTorch (train.py's load_model_file) against the
#      export; train_machine.py (the machine fine-tune) from icm-psnr-q1 for 2 steps, resumed
#      for a third, one step with --task-loss outputs, one with --whole --train-parts
#      synthesis, exported and built (needs ../shared's YOLOX-Nano).
#   4. models/training/dct/ (the DCT-domain classifier stems) on 4 pictures, CPU, and the
#      composition of the exported stem with ../shared's classifier.
#   5. models/training/latent/ (the latent-domain classifier stem) on 3 pictures coded at
#      two zoo qualities, CPU, and the composition of the exported stem.
#   6. models/training/latent/ detection stem on 3 pictures coded at the six zoo qualities,
#      CPU, and the composition of the exported stem with ../shared's YOLOX-Nano.
#
# Steps 3 to 6 need ../shared/data/train (or $ICM_TRAIN_SRC), steps 4 and 5 also ../shared's
# classifier, step 6 its detector; without them the steps are skipped with a message, except when CI=true, where
# that is a failure.
# Ends with "python: N passed, M failed"; exits non-zero on any failure.
# ICM_KEEP_TMP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/venv.sh
SRC=${ICM_TRAIN_SRC:-$ROOT/../shared/data/train}
T_ALL=$(date +%s)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/icm-python-test.XXXXXX")
if [ "${ICM_KEEP_TMP:-0}" = 1 ]; then
    echo "python: keeping $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi
mkdir -p "$TMP/logs"

PASSED=0
FAILED=0
# check NAME COMMAND...: runs COMMAND (a command or one of the functions below) in a subshell
# with errexit, so that any failing command inside fails the check; output in
# $TMP/logs/NAME.log. (Not under `if`: bash ignores errexit inside a tested function.)
check() {
    local name=$1 t0 rc log
    shift
    log="$TMP/logs/$name.log"
    t0=$(date +%s)
    set +e
    (set -e; "$@") >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        PASSED=$((PASSED + 1))
        echo "python: ok   $name ($(($(date +%s) - t0)) s)"
    else
        FAILED=$((FAILED + 1))
        echo "python: FAIL $name (exit $rc, $(($(date +%s) - t0)) s); last lines of its output:"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
}
finish() {
    echo "python: total $(($(date +%s) - T_ALL)) s"
    echo "python: $PASSED passed, $FAILED failed"
    if [ "$FAILED" -eq 0 ]; then
        exit 0
    fi
    exit 1
}

# ---------------------------------------------------------------------------- venv
setup_venv() {
    local t0=$(date +%s)
    # scripts/test.sh has run it already (ICM_TEST_ENV_READY=1)
    [ "${ICM_TEST_ENV_READY:-}" = 1 ] || scripts/setup_test_env.sh >/dev/null
    echo $(($(date +%s) - t0)) >"$TMP/pip_seconds"
    "$VENV/bin/python" -c "import torch, torchvision, compressai, pytorch_msssim, numpy, PIL, safetensors, matplotlib; \
print('torch', torch.__version__, 'compressai', compressai.__version__, 'numpy', numpy.__version__)"
}
check venv setup_venv
echo "python: venv $VENV: scripts/setup_test_env.sh took $(cat "$TMP/pip_seconds" 2>/dev/null || echo '?') s"
if [ "$FAILED" -ne 0 ]; then
    finish
fi
PY="$VENV/bin/python"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
ICM=(cargo run --release --quiet --)

# ---------------------------------------------------------------------------- zoo
check manifest "$PY" models/training/make_manifest.py --check

# ---------------------------------------------------------------------------- recipe smoke run
if [ ! -d "$SRC" ]; then
    if [ "${CI:-}" = true ]; then
        echo "python: FAIL smoke: training images $SRC not found (CI=true requires them)"
        FAILED=$((FAILED + 1))
    else
        echo "python: SKIP the training smoke run: training images $SRC not found (../shared is absent)"
    fi
    finish
fi

W="$TMP/work"
mkdir -p "$W/src"
prepare() {
    # 4 source images (sorted, the first of the folder): BSDS500 photos are 481x321
    local n=0 f
    while IFS= read -r f; do
        cp "$f" "$W/src/"
        n=$((n + 1))
    done < <(find "$SRC" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | LC_ALL=C sort | head -n 4)
    [ "$n" -eq 4 ] || { echo "found $n images under $SRC, need 4"; return 1; }
    "$PY" models/training/prepare_data.py --src "$W/src" --out "$W/train"
    [ "$(find "$W/train" -name '*.jpg' | wc -l)" -ge 2 ]
}
check prepare_data prepare

smoke_train() {
    "$PY" models/training/train.py --data "$W/train" --quality 6 --max-steps 2 --batch 2 --crop 64 \
        --device cpu --out "$W/train_out"
    [ -s "$W/train_out/ckpt_q6.pt" ] && [ -s "$W/train_out/losses_q6.csv" ]
}
check train smoke_train

smoke_init_model() {
    "$PY" models/training/train.py --data "$W/train" --quality 1 --init-model models/icm-psnr-q1.safetensors \
        --max-steps 1 --batch 2 --crop 64 --device cpu --out "$W/init_out" | tee "$W/init.log"
    grep -q "initialised from model file" "$W/init.log"
    "$PY" - "$W/init_out/ckpt_q1.pt" <<'EOF'
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
assert ck["steps"] == 78620 + 1 and ck["parents"] == ["icm-psnr-q1:q1@78620"], (ck["steps"], ck["parents"])
print("checkpoint steps", ck["steps"], "parents", ck["parents"])
EOF
}
check train_init_model smoke_init_model

# export.py needs a trained entropy bottleneck: CompressAI's initial density (init_scale 10)
# leaves ~0.5 % of its mass outside -64..64 and export.py rejects it, so the export, build
# and codec checks use the checkpoint that continued icm-psnr-q1 (a real model, 1 more step).
smoke_export() {
    "$PY" models/training/export.py --ckpt "$W/init_out/ckpt_q1.pt" --out "$W/export.safetensors" \
        --data "$W/train" --crops 8
}
check export smoke_export

ICM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/icm"
smoke_build() {
    "${ICM[@]}" model build "$W/export.safetensors" -o "$W/M.safetensors" --name smoke
    [ -s "$W/M.safetensors" ] && [ -x "$ICM_BIN" ]
}
check model_build smoke_build

smoke_codec() {
    # a 150x100 crop of a training image (not a multiple of 64: exercises the padding);
    # the binary that cargo run just built (a second cargo run would rebuild whenever
    # someone edits the sources in between)
    "$PY" - "$W/train" "$W/in.png" <<'EOF'
import glob, sys
from PIL import Image
src = sorted(glob.glob(sys.argv[1] + "/**/*.jpg", recursive=True))[0]
Image.open(src).convert("RGB").crop((0, 0, 150, 100)).save(sys.argv[2])
EOF
    "$ICM_BIN" encode "$W/in.png" -o "$W/in.icm" --model "$W/M.safetensors"
    "$ICM_BIN" decode "$W/in.icm" -o "$W/out.png" --model "$W/M.safetensors"
    "$PY" - "$W/in.png" "$W/out.png" "$W/in.icm" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
a = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.float64)
b = np.asarray(Image.open(sys.argv[2]).convert("RGB"), dtype=np.float64)
assert a.shape == b.shape, (a.shape, b.shape)
psnr = 10 * np.log10(255 ** 2 / max(((a - b) ** 2).mean(), 1e-12))
bpp = 8 * os.path.getsize(sys.argv[3]) / (a.shape[0] * a.shape[1])
print(f"decoded {b.shape[1]}x{b.shape[0]}: {bpp:.3f} bpp, PSNR {psnr:.2f} dB")
assert psnr > 20, "reconstruction too poor for a model continued from icm-psnr-q1"
EOF
}
check encode_decode smoke_codec

model_file_roundtrip() {
    # the model file read back into PyTorch must match the export it was built from:
    # h_s within half an int8 step, the rest within f16 rounding
    "$PY" - "$W/M.safetensors" "$W/export.safetensors" <<'EOF'
import sys
sys.path.insert(0, "models/training")
from train import compare_with_export, load_model_file
model, meta = load_model_file(sys.argv[1])
assert meta["name"] == "smoke", meta
res = compare_with_export(model, sys.argv[2])
bad = []
for k, (d, ref) in res.items():
    print(f"  {k:40s} {d:.3e} (max |ref| {ref:.3e})")
    if "quant. steps" in k:
        ok = d <= 0.5 + 1e-3
    elif k.startswith("h_s "):
        ok = d <= 0.05 * ref + 1e-3
    elif k.endswith("output"):
        ok = d <= 1e-2 * ref + 1e-4
    else:  # f16 storage: relative error <= 2^-11 per value; F32 tensors exact
        ok = d <= 2e-3 * ref + 1e-6
    if not ok:
        bad.append(k)
assert not bad, f"too far from the export: {bad}"
EOF
}
check model_file_roundtrip model_file_roundtrip

# ---------------------------------------------------------------------------- machine zoo
# models/training/train_machine.py (machine fine-tune with YOLOX-Nano distillation) from
# icm-psnr-q1 on the smoke pictures: 2 steps, a resumed third (neck-feature loss), one step
# of the output-distillation loss, one step on whole letterboxed pictures training g_s only
# (nothing else may move), the export and the model build of the checkpoint, and
# probe_features.py on the built model. Needs ../shared's YOLOX-Nano and onnx2torch.
DETECTOR="$ROOT/../shared/models/yolox_nano/yolox_nano.onnx"
smoke_machine() {
    local D="$W/machine"
    "$PY" models/training/train_machine.py --data "$W/train" --init-model models/icm-psnr-q1.safetensors \
        --quality 1 --max-steps 2 --batch 2 --crop 64 --device cpu --threads 2 --log-every 1 --out "$D"
    "$PY" models/training/train_machine.py --data "$W/train" --init-model models/icm-psnr-q1.safetensors \
        --quality 1 --max-steps 3 --batch 2 --crop 64 --device cpu --threads 2 --log-every 1 --out "$D" \
        | tee "$D/resume.log"
    grep -q "resumed .* at machine step 2" "$D/resume.log"
    [ "$(grep -c '^[0-9]' "$D/losses_q1.csv")" -eq 3 ]
    "$PY" models/training/train_machine.py --data "$W/train" --init-model models/icm-psnr-q1.safetensors \
        --quality 1 --max-steps 1 --batch 2 --crop 64 --device cpu --threads 2 --task-loss outputs --out "$D/outputs"
    [ -s "$D/outputs/ckpt_q1.pt" ]
    "$PY" models/training/train_machine.py --data "$W/train" --init-model models/icm-psnr-q1.safetensors \
        --quality 1 --max-steps 1 --batch 1 --whole --train-parts synthesis --device cpu --threads 2 --out "$D/whole"
    "$PY" - "$D/whole/ckpt_q1.pt" models/icm-psnr-q1.safetensors <<'PYEOF'
import sys
import torch
sys.path.insert(0, "models/training")
from model import IcmHyperprior
from train import load_model_file
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)["state_dict"]
start = IcmHyperprior()
load_model_file(sys.argv[2], start)
moved = {k.split(".")[0] for k, v in start.state_dict().items() if v.is_floating_point() and not torch.equal(v, ck[k])}
assert moved == {"g_s"}, f"--train-parts synthesis changed {sorted(moved)}"
PYEOF
    "$PY" models/training/export.py --ckpt "$D/ckpt_q1.pt" --out "$D/export.safetensors" --data "$W/train" --crops 8
    "${ICM[@]}" model build "$D/export.safetensors" -o "$D/M.safetensors" --name smoke-machine
    [ -s "$D/M.safetensors" ]
    "$PY" models/training/probe_features.py --models models/icm-psnr-q1.safetensors "$D/M.safetensors" \
        --images "$(find "$W/train" -name "*.jpg" | sort | head -1)" --icm "$ICM_BIN" | tee "$D/probe.log"
    [ "$(grep -c 'feature loss' "$D/probe.log")" -eq 2 ]
}
if [ -f "$DETECTOR" ]; then
    check machine_training smoke_machine
elif [ "${CI:-}" = true ]; then
    echo "python: FAIL machine_training: $DETECTOR not found (CI=true requires it)"
    FAILED=$((FAILED + 1))
else
    echo "python: SKIP the machine fine-tune smoke run: $DETECTOR not found"
fi

# ---------------------------------------------------------------------------- DCT stems
# models/training/dct/ end to end on 4 pictures (CPU, about 30 s): the teacher rebuild
# against onnxruntime, the cache, the gated 192-channel stem, the selection, a 24-channel
# stem with its KL phase, its export, a continuation from the export, and the composition
# with the shared classifier. Needs the classifier of ../shared and onnx/onnxruntime
# (scripts/task_requirements.txt, installed by scripts/setup_onnxruntime.sh).
CLASSIFIER="$ROOT/../shared/models/classification/mobilenet_v2_1.0_224_quant.onnx"
smoke_dct() {
    local D="$TMP/dct" T=models/training/dct
    "$PY" -c "import onnx, onnxruntime, jpeglib, torch"
    (cd "$T" && "$PY" check_teacher.py --images 3 --data "$ROOT/../shared/data/imagenet-val-sample")
    "$PY" "$T/build_cache.py" --src "$SRC" --out "$D/cache" --limit 4 --crops 2 --codings 1 --val-every 2
    "$PY" "$T/train.py" --cache "$D/cache" --out "$D/gate" --channels all --gate --feat-epochs 2 \
        --batch 2 --val-samples 0 --threads 2
    [ -s "$D/gate/channels.json" ] && [ -s "$D/gate/gate_stats.json" ]
    "$PY" "$T/train.py" --cache "$D/cache" --out "$D/s24" --channels "$D/gate/channels.json" \
        --init "$D/gate/ckpt.pt" --feat-epochs 1 --kl-epochs 1 --batch 2 --val-samples 2 --threads 2
    "$PY" "$T/export_stem.py" --ckpt "$D/s24/ckpt.pt" --out "$D/dct24_stem.onnx"
    "$PY" "$T/train.py" --cache "$D/cache" --out "$D/s24b" --channels "$D/gate/channels.json" \
        --init-stem "$D/dct24_stem.onnx" --feat-epochs 1 --max-steps 1 --batch 2 --val-samples 0 \
        | tee "$D/s24b.log"
    grep -q "initialised from exported stem" "$D/s24b.log"
    "$PY" scripts/compose_dct_tasks.py --stems "$D/dct24_stem.onnx" --out-dir "$D/composed" --check
    [ -s "$D/composed/mobilenet_v2_dct24.onnx" ]
}
if [ -f "$CLASSIFIER" ]; then
    check dct_training smoke_dct
elif [ "${CI:-}" = true ]; then
    echo "python: FAIL dct_training: $CLASSIFIER not found (CI=true requires it)"
    FAILED=$((FAILED + 1))
else
    echo "python: SKIP the DCT stem smoke run: $CLASSIFIER not found"
fi

# ---------------------------------------------------------------------------- latent stem
# models/training/latent/ end to end on 3 pictures (CPU, about 30 s): the cache (icm encode
# and decode --latents at qualities 1 and 6, the teacher on the crops), feature and KL
# steps, a resumed run, the export, a continuation from the export, and the composition.
smoke_latent() {
    local D="$TMP/latent" T=models/training/latent
    "$PY" -c "import onnx, onnxruntime, torch"
    cargo build --release --quiet --bin icm
    ICM_BIN="$ICM_BIN" "$PY" "$T/build_cache.py" --src "$SRC" --out "$D/cache" --limit 3 --crops 2 \
        --qualities 1,6 --val-every 2
    [ "$(find "$D/cache/streams" -name '*.icm' | wc -l)" -eq 6 ]
    "$PY" "$T/train.py" --cache "$D/cache" --out "$D/s" --feat-steps 2 --kl-steps 2 --batch 2 \
        --val-samples 4 --threads 2 --max-steps 3
    "$PY" "$T/train.py" --cache "$D/cache" --out "$D/s" --feat-steps 2 --kl-steps 2 --batch 2 \
        --val-samples 4 --threads 2 | tee "$D/s.log"
    grep -q "resuming .* at step 3" "$D/s.log" && grep -q '"phase": "kl"' "$D/s.log"
    "$PY" "$T/export_latent_stem.py" --ckpt "$D/s/ckpt.pt" --out "$D/latent_cls_stem.onnx"
    "$PY" "$T/train.py" --cache "$D/cache" --out "$D/s2" --init-stem "$D/latent_cls_stem.onnx" \
        --feat-steps 1 --batch 2 --val-samples 0 | tee "$D/s2.log"
    grep -q "initialised from exported stem" "$D/s2.log"
    "$PY" scripts/compose_latent_tasks.py --stem "$D/latent_cls_stem.onnx" --out-dir "$D/composed" --check
    [ -s "$D/composed/mobilenet_v2_latent.onnx" ]
}
if [ -f "$CLASSIFIER" ]; then
    check latent_training smoke_latent
elif [ "${CI:-}" = true ]; then
    echo "python: FAIL latent_training: $CLASSIFIER not found (CI=true requires it)"
    FAILED=$((FAILED + 1))
else
    echo "python: SKIP the latent stem smoke run: $CLASSIFIER not found"
fi

# ------------------------------------------------------------------ latent detection stem
# models/training/latent/ detection scripts end to end on 3 pictures (CPU, about 30 s):
# the cache (6 codings and 2 letterbox scales a picture, YOLOX-Nano's backbone on each),
# 3 steps, a resumed fourth, a step with the head loss from that checkpoint, the export (checked against PyTorch) and the composition with
# the detector's neck and head (run on random input).
smoke_latent_det() {
    local D="$TMP/latent_det" T=models/training/latent
    "$PY" -c "import onnx, onnxruntime, torch"
    cargo build --release --quiet --bin icm
    ICM_BIN="$ICM_BIN" "$PY" "$T/build_det_cache.py" --src "$SRC" --out "$D/cache" --limit 3
    [ "$(find "$D/cache/streams" -name '*.icm' | wc -l)" -eq 18 ]
    "$PY" "$T/train_det.py" --cache "$D/cache" --out "$D/s" --steps 4 --batch 2 --val-every 2 \
        --val-samples 2 --threads 2 --max-steps 3
    "$PY" "$T/train_det.py" --cache "$D/cache" --out "$D/s" --steps 4 --batch 2 --val-every 2 \
        --val-samples 2 --threads 2 | tee "$D/s.log"
    grep -q "resuming .* at step 3" "$D/s.log" && grep -q '"val_dark5"' "$D/s.log"
    "$PY" "$T/train_det.py" --cache "$D/cache" --out "$D/h" --init "$D/s/ckpt.pt" --head-weight 1 \
        --steps 1 --batch 2 --val-every 1 --val-samples 2 --threads 2 | tee "$D/h.log"
    grep -q "initialised from" "$D/h.log" && grep -q '"val_head_box"' "$D/h.log"
    "$PY" "$T/export_det_stem.py" --ckpt "$D/s/ckpt.pt" --out "$D/latent_det_stem.onnx"
    "$PY" scripts/compose_latent_tasks.py --stems "$D/latent_det_stem.onnx" --out-dir "$D/composed" --check
    [ -s "$D/composed/yolox_nano_latent.onnx" ]
}
if [ -f "$DETECTOR" ]; then
    check latent_det_training smoke_latent_det
elif [ "${CI:-}" = true ]; then
    echo "python: FAIL latent_det_training: $DETECTOR not found (CI=true requires it)"
    FAILED=$((FAILED + 1))
else
    echo "python: SKIP the latent detection stem smoke run: $DETECTOR not found"
fi

finish
