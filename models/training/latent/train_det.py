#!/usr/bin/env python3
"""Trains the latent detection stem by distillation from YOLOX-Nano's backbone (the teacher,
on the clean letterboxed picture), on the cache of build_det_cache.py.

Loss: for each of dark3, dark4, dark5 the squared error divided by the teacher's variance of
that channel (over the cache), averaged over elements; the three averaged (the feature
loss). With --head-weight W > 0, plus W times a head loss: the detector's frozen neck and
head (det_common.torch_head, float, in PyTorch) run on the student's and on the teacher's
backbone outputs, and per anchor point the binary cross-entropy of the student's
objectness against the teacher's (mean over points), the teacher's objectness times the
cross-entropy of the class probabilities (mean over classes) and times the L1 distance of
the box regression (grid units, log sizes, mean of the four), those two divided by the sum
of the teacher's objectness; the cross-entropies weighted by HEAD_CE. The neck and head
stay the detector's at composition either way. One stem serves all qualities: each sample
of a batch takes the coding of a random zoo model.

    python models/training/latent/train_det.py --cache .latent_det_cache \
        --out models/training/latent/out/d1 --steps 3000

Resumable: OUT/ckpt.pt is written every --save-every steps and at the end; a run with the
same OUT continues from it. --init CKPT starts from another run's weights (and its input
statistics) with a new schedule. --partial trains on the finished pictures of a cache still
being built (and takes newly finished ones at each pass). Every 25th picture of the cache
is held out; a JSON line per minute gives the training loss, and every --val-every steps
the held-out loss per output and per quality.
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

from det_common import CUT_NAMES, DEFAULT_DETECTOR, DET_GRID
from det_stem import DetStem, macs

VAL_EVERY_PICTURE = 25
# Weight of the two cross-entropies of the head loss against the box term: at the start of
# a head phase (from a feature-loss stem) they are about 0.03 each, the box term about 1.
HEAD_CE = 10.0


def load_cache(path: str, partial: bool) -> dict:
    with open(os.path.join(path, "progress.json")) as f:
        prog = json.load(f)
    g = prog["geometries"]
    m = prog["done"] * g
    if prog["done"] < prog["pictures"] and not partial:
        raise SystemExit(f"{path}: {prog['done']} of {prog['pictures']} pictures done (--partial?)")
    arrays = {k: np.load(os.path.join(path, f"{k}.npy"), mmap_mode="r") for k in ("x", *CUT_NAMES)}
    pic = np.arange(m) // g
    idx = np.arange(m)
    return {**arrays,
            "train_idx": idx[pic % VAL_EVERY_PICTURE != 0],
            "val_idx": idx[pic % VAL_EVERY_PICTURE == 0]}


def batch(cache, idx, qidx):
    """Stem inputs (sample idx[k] coded at quality index qidx[k]) and the three targets."""
    order = np.argsort(idx)  # memmap reads in file order
    idx, qidx = np.asarray(idx)[order], np.asarray(qidx)[order]
    x = torch.from_numpy(np.stack([cache["x"][i, q] for i, q in zip(idx, qidx)]).astype(np.float32))
    ts = [torch.from_numpy(cache[k][idx].astype(np.float32)) for k in CUT_NAMES]
    return x, ts


def stats(cache, rng, n=400):
    """Per-channel mean and std of the stem input, per-channel mean and variance of each
    target."""
    idx = np.sort(rng.choice(cache["train_idx"], size=min(n, len(cache["train_idx"])), replace=False))
    q = rng.integers(0, cache["x"].shape[1], size=len(idx))
    x = np.stack([cache["x"][i, qq] for i, qq in zip(idx, q)]).astype(np.float64)
    mean = x.mean(axis=(0, 2, 3))
    std = np.maximum(x.std(axis=(0, 2, 3)), 1e-2)
    t = [cache[k][idx].astype(np.float64) for k in CUT_NAMES]
    fmean = [v.mean(axis=(0, 2, 3)) for v in t]
    fvar = [np.maximum(v.var(axis=(0, 2, 3)), 1e-4) for v in t]
    return mean, std, fmean, fvar


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=".latent_det_cache")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--partial", action="store_true",
                    help="train on the finished part of a cache still being built")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--head-weight", type=float, default=0.0,
                    help="weight of the head loss (0: feature loss only)")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR)
    ap.add_argument("--init", help="a checkpoint of another run")
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (smoke tests)")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--val-samples", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    cache = load_cache(args.cache, args.partial)
    if len(cache["train_idx"]) == 0:
        raise SystemExit(f"{args.cache}: no training samples yet")
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    ck_path = os.path.join(args.out, "ckpt.pt")
    n_q = cache["x"].shape[1]

    stem = DetStem(cache["x"].shape[2])
    opt = torch.optim.AdamW(stem.parameters(), lr=args.lr, weight_decay=1e-4)
    step, log = 0, []
    if os.path.isfile(ck_path):
        state = torch.load(ck_path, map_location="cpu", weights_only=False)
        stem.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        fvar, step, log = state["fvar"], state["step"], state["log"]
        rng = np.random.default_rng(args.seed + step)
        print(f"resuming {ck_path} at step {step}")
    elif args.init:
        ck = torch.load(args.init, map_location="cpu", weights_only=False)
        stem.load_state_dict(ck["model"])
        fvar = ck["fvar"]
        print(f"initialised from {args.init} (step {ck['step']})")
    else:
        mean, std, fmean, fvar = stats(cache, rng)
        stem.mean.copy_(torch.from_numpy(mean).float())
        stem.inv_std.copy_(torch.from_numpy(1.0 / std).float())
        with torch.no_grad():  # start each output at the teacher's channel means (loss 1)
            for conv, fm in zip(stem.outputs(), fmean):
                conv.weight.mul_(0.01)
                conv.bias.copy_(torch.from_numpy(fm).float())
    fvar_t = [torch.from_numpy(np.asarray(v)).float()[None, :, None, None] for v in fvar]
    stem_macs = macs(stem, DET_GRID, DET_GRID)

    def lr_at(s):
        warm = min(1.0, (s + 1) / 100)
        return warm * args.lr * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / max(1, args.steps)))

    def losses(outs, ts):
        return [(((o - t) ** 2) / v).mean() for o, t, v in zip(outs, ts, fvar_t)]

    head = None
    if args.head_weight > 0:
        from det_common import torch_head

        head = torch_head(args.detector)

    def head_losses(outs, ts):
        """(objectness, class, box) losses of the frozen head on the student's outputs
        against its outputs on the teacher's (module docstring)."""
        def flat(levels):
            return torch.cat([v.flatten(2) for v in levels], 2)  # (N, 85, points)

        with torch.no_grad():
            t = flat(head(*ts))
        p = flat(head(*outs))
        eps = 1e-6
        t_obj, p_obj = t[:, 4], p[:, 4].clamp(eps, 1 - eps)
        obj = torch.nn.functional.binary_cross_entropy(p_obj, t_obj)
        w = t_obj / t_obj.sum().clamp_min(eps)
        cls = torch.nn.functional.binary_cross_entropy(p[:, 5:].clamp(eps, 1 - eps), t[:, 5:],
                                                       reduction="none").mean(1)
        box = (p[:, :4] - t[:, :4]).abs().mean(1)
        return obj, (w * cls).sum(), (w * box).sum()

    def save(final=False):
        ck = {"model": stem.state_dict(), "opt": opt.state_dict(), "step": step, "log": log,
              "fvar": [np.asarray(v) for v in fvar], "args": vars(args),
              "summary": {"steps": step, "batch": args.batch, "final": final,
                          "samples": int(len(cache["train_idx"])), "qualities": n_q,
                          "macs": stem_macs, "last": log[-1] if log else None}}
        torch.save(ck, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)

    def validate():
        stem.eval()
        vi = cache["val_idx"][:: max(1, len(cache["val_idx"]) // max(1, args.val_samples))]
        vi = vi[: args.val_samples]
        per_map, per_head, by_q, n = np.zeros(3), np.zeros(3), {}, 0
        with torch.no_grad():
            for q in range(n_q):
                for k in range(0, len(vi), 24):
                    ids = vi[k : k + 24]
                    x, ts = batch(cache, ids, np.full(len(ids), q))
                    outs = stem(x)
                    ls = [float(v) for v in losses(outs, ts)]
                    per_map += np.asarray(ls) * len(ids)
                    if head is not None:
                        per_head += np.asarray([float(v) for v in head_losses(outs, ts)]) * len(ids)
                    by_q.setdefault(f"val_q{q + 1}", []).append((np.mean(ls), len(ids)))
                    n += len(ids)
        stem.train()
        r = {"val": float(per_map.sum() / 3 / max(1, n))}
        r.update({f"val_{name}": round(float(v / max(1, n)), 4) for name, v in zip(CUT_NAMES, per_map)})
        r.update({k: round(sum(a * b for a, b in v) / sum(b for _, b in v), 4) for k, v in by_q.items()})
        if head is not None:
            r.update({f"val_head_{k}": round(float(v / max(1, n)), 4)
                      for k, v in zip(("obj", "cls", "box"), per_head)})
        return r

    stem.train()
    t0, last_print = time.time(), time.time()
    run, run_head, n_run = np.zeros(3), np.zeros(3), 0
    perm, pos = rng.permutation(cache["train_idx"]), 0
    stop = args.steps if args.max_steps is None else min(args.steps, step + args.max_steps)
    while step < stop:
        if pos + args.batch > len(perm):
            if args.partial:
                cache = load_cache(args.cache, True)  # pictures finished since
            perm, pos = rng.permutation(cache["train_idx"]), 0
        ids = perm[pos : pos + args.batch]
        pos += args.batch
        x, ts = batch(cache, ids, rng.integers(0, n_q, size=len(ids)))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        outs = stem(x)
        ls = losses(outs, ts)
        loss = sum(ls) / 3
        if head is not None:
            hl = head_losses(outs, ts)
            loss = loss + args.head_weight * (HEAD_CE * (hl[0] + hl[1]) + hl[2])
            run_head += [float(v.detach()) for v in hl]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run += [float(v.detach()) for v in ls]
        n_run += 1
        step += 1
        val_now = step % args.val_every == 0 or step == stop
        if time.time() - last_print > 60 or val_now:
            rec = {"step": step, "loss": float(run.sum() / 3 / max(1, n_run)),
                   **{n: round(float(v / max(1, n_run)), 4) for n, v in zip(CUT_NAMES, run)},
                   "lr": lr_at(step - 1), "samples": int(len(cache["train_idx"])),
                   "s": round(time.time() - t0)}
            if head is not None:
                rec.update({f"head_{k}": round(float(v / max(1, n_run)), 4)
                            for k, v in zip(("obj", "cls", "box"), run_head)})
            if val_now and args.val_samples > 0:
                rec.update(validate())
            log.append(rec)
            print(json.dumps(rec), flush=True)
            run, run_head, n_run, last_print = np.zeros(3), np.zeros(3), 0, time.time()
        if step % args.save_every == 0:
            save()
    save(final=step >= args.steps)
    print(f"{ck_path}: step {step}/{args.steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
