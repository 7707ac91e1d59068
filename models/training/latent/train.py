"""Trains the latent stem by distillation from the shared MobileNetV2 (the teacher, on the
clean RGB crop), on the cache of build_cache.py.

Phases, by step:
  1. feature: the stem's output against the teacher's stride-16 cut tensor, squared error
     per channel divided by the teacher's variance of that channel (only the stem runs);
  2. kl (--kl-epochs): the stem followed by the frozen tail of the classifier
     (models/training/dct/onnx_torch.OnnxNet fed at the stride-16 cut, float activations),
     loss = KL(teacher || student) on the output distribution + --feat-weight x the
     feature loss.
One stem serves all qualities: each batch mixes samples of every zoo model.

    python models/training/latent/train.py --cache .latent_cache --out models/training/latent/out/s1

Resumable: OUT/ckpt.pt is written every --save-every steps and at the end of every epoch,
and a run with the same OUT continues from it (--feat-steps/--kl-steps fix the schedule
when the cache grows between runs: --partial trains on the finished pictures of a cache
still being built). --init CKPT starts from another run's weights, --init-stem FILE.onnx
from an exported stem. Logs: one JSON line per minute and
per epoch (val_feat; val_agree: top-1 agreement with the teacher on the held-out
pictures, overall and per quality).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from latent_common import CUT_SUFFIX, DEFAULT_TEACHER
from common import input_stats  # noqa: E402  (models/training/dct/common.py, on sys.path via latent_common)
from latent_stem import LatentStem, load_folded


def load_cache(path: str, partial: bool = False) -> dict:
    """The arrays of a finished cache; with `partial`, of the pictures a cache still being
    built has finished (progress.json), with the validation split it will have."""
    meta_path = os.path.join(path, "meta.json")
    if os.path.isfile(meta_path):
        meta = json.load(open(meta_path))
        done = len(meta["images"])
    elif partial:
        prog = json.load(open(os.path.join(path, "progress.json")))
        done = prog["done"]
        meta = {"val_images": list(range(0, prog["files"], 25)), "crops": prog["crops"],
                "qualities": prog["qualities"], "partial": done}
        print(f"{path}: partial cache, {done} of {prog['files']} pictures")
    else:
        raise SystemExit(f"{meta_path}: cache not finished (--partial uses what is done)")
    c = {"meta": meta}
    for name in ("crop_feat", "crop_logits", "crop_image", "latents", "sample_crop", "sample_q"):
        c[name] = np.load(os.path.join(path, name + ".npy"), mmap_mode="r")
    n = done * meta["crops"] * len(meta["qualities"])
    img_of_sample = np.asarray(c["crop_image"])[np.asarray(c["sample_crop"][:n])]
    val = np.isin(img_of_sample, meta["val_images"])
    c["train_idx"] = np.flatnonzero(~val)
    c["val_idx"] = np.flatnonzero(val)
    return c


def batch(cache, idx):
    idx = np.sort(idx)
    x = torch.from_numpy(np.asarray(cache["latents"][idx], dtype=np.float32))
    crops = np.asarray(cache["sample_crop"][idx])
    f = torch.from_numpy(np.asarray(cache["crop_feat"][crops], dtype=np.float32))
    lg = torch.from_numpy(np.asarray(cache["crop_logits"][crops], dtype=np.float32))
    return x, f, lg, np.asarray(cache["sample_q"][idx])


def stats(cache, rng, n=2000):
    """Input normalisation and cut-tensor variance over n training samples."""
    return input_stats(cache, rng, "latents", n, 200, 0.05)


def init_from_stem(stem: LatentStem, path: str):
    from export_latent_stem import read_stem

    mean, inv_std, folded, _ = read_stem(path)
    load_folded(stem, folded)
    stem.mean.copy_(torch.from_numpy(mean))
    stem.inv_std.copy_(torch.from_numpy(inv_std))
    print(f"initialised from exported stem {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=".latent_cache")
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--feat-epochs", type=float, default=4)
    ap.add_argument("--kl-epochs", type=float, default=0)
    ap.add_argument("--feat-steps", type=int, help="feature steps (instead of --feat-epochs)")
    ap.add_argument("--kl-steps", type=int, help="KL steps (instead of --kl-epochs)")
    ap.add_argument("--partial", action="store_true",
                    help="train on the finished part of a cache still being built")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--kl-lr", type=float, default=5e-4)
    ap.add_argument("--feat-weight", type=float, default=1.0)
    ap.add_argument("--init", help="a checkpoint of another run")
    ap.add_argument("--init-stem", help="an exported stem (.onnx)")
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (smoke tests)")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--val-samples", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    cache = load_cache(args.cache, args.partial)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    ck_path = os.path.join(args.out, "ckpt.pt")

    stem = LatentStem(cache["latents"].shape[1])
    spe = max(1, len(cache["train_idx"]) // args.batch)
    feat_steps = args.feat_steps if args.feat_steps is not None else int(round(args.feat_epochs * spe))
    kl_steps = args.kl_steps if args.kl_steps is not None else int(round(args.kl_epochs * spe))
    total = feat_steps + kl_steps
    state = None
    if os.path.isfile(ck_path):
        state = torch.load(ck_path, map_location="cpu", weights_only=False)
        stem.load_state_dict(state["model"])
        fvar = state["fvar"]
        print(f"resuming {ck_path} at step {state['step']}")
    else:
        mean, std, fvar = stats(cache, rng)
        stem.mean.copy_(torch.from_numpy(mean).float())
        stem.inv_std.copy_(torch.from_numpy(1.0 / std).float())
        if args.init:
            ck = torch.load(args.init, map_location="cpu", weights_only=False)
            stem.load_state_dict(ck["model"])
            print(f"initialised from {args.init}")
        if args.init_stem:
            init_from_stem(stem, args.init_stem)
    fvar_t = torch.from_numpy(np.asarray(fvar)).float()[None, :, None, None]

    tail, cut = None, None
    if kl_steps > 0 or args.val_samples > 0:
        from onnx_torch import OnnxNet, find_tensor

        tail = OnnxNet(args.teacher, fake_quant=False).eval()
        cut = find_tensor(tail.model, CUT_SUFFIX, "Conv")

    def run_tail(y):
        return tail.run({cut: y}, [tail.logits])[0]

    opt = torch.optim.AdamW(stem.parameters(), lr=args.lr, weight_decay=1e-4)
    step, log = 0, []
    if state is not None:
        opt.load_state_dict(state["opt"])
        step, log = state["step"], state["log"]
        rng = np.random.default_rng(args.seed + step)

    def lr_at(s):
        if s < feat_steps:
            warm = min(1.0, (s + 1) / 100)
            return warm * args.lr * 0.5 * (1 + math.cos(math.pi * s / max(1, feat_steps)))
        k = s - feat_steps
        return args.kl_lr * 0.5 * (1 + math.cos(math.pi * k / max(1, kl_steps)))

    def save(final=False):
        ck = {
            "model": stem.state_dict(), "opt": opt.state_dict(), "step": step, "log": log,
            "fvar": np.asarray(fvar), "args": vars(args),
            "summary": {"steps": step, "feat_steps": feat_steps, "kl_steps": kl_steps,
                        "batch": args.batch, "final": final,
                        "samples": int(len(cache["train_idx"])),
                        "last": log[-1] if log else None},
        }
        torch.save(ck, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)

    def validate():
        stem.eval()
        vi = cache["val_idx"][:: max(1, len(cache["val_idx"]) // max(1, args.val_samples))][: args.val_samples]
        fl, agree, n, byq = 0.0, 0, 0, {}
        with torch.no_grad():
            for k in range(0, len(vi), 50):
                x, f, lg, q = batch(cache, vi[k : k + 50])
                y = stem(x)
                fl += float((((y - f) ** 2) / fvar_t).mean()) * len(q)
                if tail is not None:
                    ok = (run_tail(y).argmax(1) == lg.argmax(1)).numpy()
                    agree += int(ok.sum())
                    for qq, o in zip(q, ok):
                        byq.setdefault(f"agree_q{qq}", []).append(int(o))
                n += len(q)
        stem.train()
        r = {"val_feat": fl / max(1, n)}
        if tail is not None:
            r["val_agree"] = agree / max(1, n)
            r.update({b: round(float(np.mean(v)), 4) for b, v in sorted(byq.items())})
        return r

    stem.train()
    t0 = time.time()
    last_print = time.time()
    run = {"feat": 0.0, "kl": 0.0, "n": 0}
    perm = rng.permutation(cache["train_idx"])
    pos = (step * args.batch) % len(perm)
    stop = total if args.max_steps is None else min(total, step + args.max_steps)
    while step < stop:
        if pos + args.batch > len(perm):
            if cache["meta"].get("partial") is not None:
                cache = load_cache(args.cache, True)  # pictures finished since
            perm, pos = rng.permutation(cache["train_idx"]), 0
        x, f, lg, _ = batch(cache, perm[pos : pos + args.batch])
        pos += args.batch
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        y = stem(x)
        feat_loss = (((y - f) ** 2) / fvar_t).mean()
        if step >= feat_steps:
            kl = F.kl_div(F.log_softmax(run_tail(y), 1), F.log_softmax(lg, 1), log_target=True,
                          reduction="batchmean")
            loss = args.feat_weight * feat_loss + kl
            run["kl"] += float(kl.detach())
        else:
            loss = feat_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run["feat"] += float(feat_loss.detach())
        run["n"] += 1
        step += 1
        end_epoch = step % spe == 0 or step == total
        if time.time() - last_print > 60 or end_epoch or step == stop:
            n = max(1, run["n"])
            rec = {"step": step, "epoch": round(step / spe, 2),
                   "phase": "kl" if step > feat_steps else "feature",
                   "feat": run["feat"] / n, "lr": lr_at(step - 1), "s": round(time.time() - t0)}
            if step > feat_steps:
                rec["kl"] = run["kl"] / n
            if end_epoch or step == stop:
                rec.update(validate())
            log.append(rec)
            print(json.dumps(rec), flush=True)
            run = {"feat": 0.0, "kl": 0.0, "n": 0}
            last_print = time.time()
        if step % args.save_every == 0 or end_epoch:
            save()
    save(final=step >= total)
    print(f"{ck_path}: step {step}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
