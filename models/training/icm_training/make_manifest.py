"""Write (or check) models/MANIFEST.json: what every model of the zoo is, where it came
from and what it measures on Kodak.

For each model file models/icm-*.safetensors (spec 7) the manifest records its name,
quality, lambda, architecture (N, M, g_s widths), parameter count, file size, SHA-256 (the
model id of spec 7.1), its training (steps and data from the file's metadata; schedule and
hardware from the table in models/training/README.md) and the Kodak bpp / PSNR-RGB /
MS-SSIM measured by `icm eval` (docs/results/kodak-icm.json, matched by model name *and*
SHA-256: a result measured with another file is an error).

Standard library only (the safetensors header is JSON), so any python3 runs it.

Usage (from the repository root):
  PYTHONPATH=models/training python3 -m icm_training.make_manifest           # write models/MANIFEST.json
  PYTHONPATH=models/training python3 -m icm_training.make_manifest --check   # exit 1 unless MANIFEST.json matches the files
(or `python -m icm_training.make_manifest` in the project venv, where the package is installed)
"""
import argparse
import glob
import hashlib
import json
import os
import struct
import sys

from . import ROOT

MEASURED_BY = ("icm eval --dataset ../shared/data/kodak --qualities 1..6 "
               "-o docs/results/kodak-icm.json --csv docs/results/kodak-icm.csv")
DEFAULT_QUALITY = 3
HARDWARE = "1x NVIDIA H100 80GB HBM3, TF32, torch 2.11.0+cu130"
TRAINING_SUMMARY = ("H100, TF32; q6 from scratch 27983 steps (batch 16), q5..q1 fine-tuned each "
                    "from the next higher rate, batch 32; random 256x256 crops, Adam, "
                    "loss bpp + lambda*255^2*MSE (models/training/README.md)")
# The zoo's training slices, from the table "What was run" of models/training/README.md:
# quality -> (initialised from, learning rate, batch, slice steps, slice seconds).
# The cumulative steps must equal the `steps` metadata of each file (checked below).
TRAINING = {
    6: ("scratch", 3e-4, 16, 27983, 445),
    5: ("icm-psnr-q6", 2e-4, 32, 8546, 157),
    4: ("icm-psnr-q5", 2e-4, 32, 8449, 159),
    3: ("icm-psnr-q4", 2e-4, 32, 7948, 157),
    2: ("icm-psnr-q3", 2e-4, 32, 12979, 234),
    1: ("icm-psnr-q2", 2e-4, 32, 12715, 232),
}
TRANSFORMS = ("g_a", "h_a", "h_s", "g_s")
# parameters = learned weights: conv/deconv weights and biases, GDN beta/gamma; the integer
# h_s counts its weights and biases (its requantisation multipliers/shifts are derived constants)
NOT_PARAMETERS = (".multiplier", ".shift")


class ManifestError(Exception):
    pass


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {}) or {}
    if "icm" not in meta:
        raise ManifestError(f"{path}: no 'icm' metadata: not an icm model file")
    return header, json.loads(meta["icm"])


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def model_files(models_dir):
    return sorted(glob.glob(os.path.join(models_dir, "icm-*.safetensors")))


def training_of(quality, steps, data):
    chain = [q for q in sorted(TRAINING, reverse=True) if q >= quality]
    if quality not in TRAINING:
        raise ManifestError(f"quality {quality}: no training record in make_manifest.py")
    init, lr, batch, slice_steps, slice_s = TRAINING[quality]
    total = sum(TRAINING[q][3] for q in chain)
    if total != steps:
        raise ManifestError(f"quality {quality}: the README's slices add up to {total} steps, "
                            f"the model file says {steps}")
    return {
        "batch": batch,
        "crop": 256,
        "cumulative_seconds": sum(TRAINING[q][4] for q in chain),
        "data": data,
        "hardware": HARDWARE,
        "init": init,
        "lr": lr,
        "slice_seconds": slice_s,
        "slice_steps": slice_steps,
        "steps": steps,
    }


def kodak_results(results_path):
    with open(results_path) as f:
        ev = json.load(f)
    points = ev.get("rate_points")
    res = ev.get("results")
    if not points or not res:
        raise ManifestError(f"{results_path}: needs 'rate_points' and 'results'")
    for key in ("bpp", "psnr-rgb", "ms-ssim"):
        if len(res.get(key, [])) != len(points):
            raise ManifestError(f"{results_path}: results[{key!r}] has {len(res.get(key, []))} values "
                                f"for {len(points)} rate points")
    # The rate point's model is `label` in the results schema of icm-eval (`model` before).
    def name(row):
        return row.get("label", row.get("model"))

    by_name = {}
    for i, p in enumerate(points):
        imgs = [r for r in ev.get("per_image", []) if name(r) == name(p)]
        by_name[name(p)] = {
            "sha256": p.get("sha256"),
            "bpp": res["bpp"][i],
            "psnr_rgb": res["psnr-rgb"][i],
            "ms_ssim": res["ms-ssim"][i],
            "images": len(imgs),
        }
        if imgs:  # the summary must be the mean of the per-image rows
            for key, col in (("bpp", "bpp"), ("psnr_rgb", "psnr-rgb"), ("ms_ssim", "ms-ssim")):
                mean = sum(r[col] for r in imgs) / len(imgs)
                if abs(mean - by_name[name(p)][key]) > 1e-9 * max(1.0, abs(mean)):
                    raise ManifestError(f"{results_path}: {name(p)} {key} {by_name[name(p)][key]} "
                                        f"is not the mean of its per-image rows ({mean})")
    return ev, by_name


def build_manifest(models_dir, results_path):
    ev, kodak = kodak_results(results_path)
    entries = []
    for path in model_files(models_dir):
        header, meta = read_header(path)
        name = meta.get("name")
        quality = int(meta["quality"])
        shapes = {k: v["shape"] for k, v in header.items()}
        per = {t: sum(numel(s) for k, s in shapes.items()
                      if k.startswith(t + ".") and not k.endswith(NOT_PARAMETERS)) for t in TRANSFORMS}
        gs = [shapes[f"g_s.{i}.weight"][1] for i in (0, 2, 4)]
        sha = sha256_of(path)
        if name not in kodak:
            raise ManifestError(f"{results_path} has no results for {name} ({os.path.basename(path)})")
        k = kodak[name]
        if k["sha256"] != sha:
            raise ManifestError(f"{results_path} measured {name} with sha256 {k['sha256']}, but "
                                f"{os.path.relpath(path, ROOT)} has sha256 {sha}: re-run `{MEASURED_BY}`")
        entries.append({
            "architecture": meta["architecture"],
            "M": int(meta["M"]),
            "N": int(meta["N"]),
            "g_s_widths": gs,
            "file": os.path.basename(path),
            "file_size": os.path.getsize(path),
            "format": meta["format"],
            "kodak": {"bpp": k["bpp"], "images": k["images"], "ms_ssim": k["ms_ssim"], "psnr_rgb": k["psnr_rgb"]},
            "lambda": float(meta["lambda"]),
            "name": name,
            "parameters": sum(per.values()),
            "parameters_by_transform": per,
            "quality": quality,
            "sha256": sha,
            "training": training_of(quality, int(meta["steps"]), meta.get("data", "")),
        })
    if not entries:
        raise ManifestError(f"no model files icm-*.safetensors in {models_dir}")
    entries.sort(key=lambda e: e["quality"])
    qualities = [e["quality"] for e in entries]
    if len(set(qualities)) != len(qualities):
        raise ManifestError(f"duplicate qualities {qualities}")
    if DEFAULT_QUALITY not in qualities:
        raise ManifestError(f"default quality {DEFAULT_QUALITY} is not in the zoo {qualities}")
    return {
        "default_quality": DEFAULT_QUALITY,
        "kodak_eval": ev.get("description", ""),
        "measured_by": MEASURED_BY,
        "models": entries,
        "parameters_counted": "elements of the g_a, h_a, h_s and g_s tensors (conv weights and biases, "
                              "GDN beta and gamma); h_s requantisation multipliers/shifts and the entropy "
                              "tables are not parameters",
        "training": TRAINING_SUMMARY,
    }


def dumps(manifest):
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def check(models_dir, manifest_path, results_path):
    """Sizes and hashes of the listed files, no unlisted file, and the whole manifest up to date."""
    errors = []
    try:
        with open(manifest_path) as f:
            text = f.read()
        man = json.loads(text)
    except (OSError, ValueError) as e:
        return [f"{manifest_path}: {e}"]
    listed = set()
    for e in man.get("models", []):
        path = os.path.join(models_dir, e.get("file", ""))
        listed.add(os.path.abspath(path))
        if not os.path.isfile(path):
            errors.append(f"{e.get('name')}: {path} is missing")
            continue
        size, sha = os.path.getsize(path), sha256_of(path)
        if size != e.get("file_size"):
            errors.append(f"{e.get('name')}: file size {size} != manifest {e.get('file_size')}")
        if sha != e.get("sha256"):
            errors.append(f"{e.get('name')}: sha256 {sha} != manifest {e.get('sha256')}")
    for path in model_files(models_dir):
        if os.path.abspath(path) not in listed:
            errors.append(f"{os.path.relpath(path, ROOT)} is not in the manifest")
    if not errors:
        try:
            fresh = dumps(build_manifest(models_dir, results_path))
        except ManifestError as e:
            errors.append(str(e))
        else:
            if fresh != text:
                errors.append(f"{manifest_path} is stale (re-run python -m icm_training.make_manifest)")
    return errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(ROOT, "models"), help="folder of the model files")
    ap.add_argument("--results", default=os.path.join(ROOT, "docs", "results", "kodak-icm.json"),
                    help="icm eval JSON of the zoo on Kodak")
    ap.add_argument("--out", default=None, help="manifest path (default: <models>/MANIFEST.json)")
    ap.add_argument("--check", action="store_true",
                    help="verify that the existing manifest matches the files (sizes, SHA-256, contents)")
    args = ap.parse_args(argv)
    out = args.out or os.path.join(args.models, "MANIFEST.json")
    if args.check:
        errors = check(args.models, out, args.results)
        for e in errors:
            print(f"MANIFEST check: {e}", file=sys.stderr)
        if errors:
            return 1
        n = len(json.load(open(out))["models"])
        print(f"{os.path.relpath(out, ROOT)}: {n} models, sizes and SHA-256 match")
        return 0
    try:
        man = build_manifest(args.models, args.results)
    except ManifestError as e:
        print(f"make_manifest: {e}", file=sys.stderr)
        return 1
    text = dumps(man)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    for e in man["models"]:
        k = e["kodak"]
        print(f"{e['name']}: q{e['quality']} lambda {e['lambda']} {e['parameters']} parameters "
              f"{e['file_size']} bytes sha256 {e['sha256'][:16]}... Kodak {k['bpp']:.4f} bpp "
              f"{k['psnr_rgb']:.2f} dB MS-SSIM {k['ms_ssim']:.4f}")
    print(f"wrote {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
