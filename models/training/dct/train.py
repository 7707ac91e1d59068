"""Trains a DCT stem by distillation from the shared MobileNetV2 (the teacher, on the clean
RGB crop), on the cache of build_cache.py.

Phases, by step:
  1. feature: the stem's output against the teacher's cut tensor, squared error per channel
     divided by the teacher's variance of that channel (only the stem runs);
  2. kl (--kl-epochs): the stem followed by the frozen tail of the classifier
     (onnx_torch.OnnxNet, float activations), loss = KL(teacher || student) on the output
     distribution + the feature loss.
With --gate, phase 1 trains the channel gates too (stem.Gate), with a penalty on the
expected fraction of open gates whose weight follows a dual-ascent rule so that about
--target-open channels stay open on average; at the end the mean open probability of every
channel over the training samples is written to OUT/gate_stats.json and the --target-open
most open channels, ascending, to OUT/channels.json.

    python models/training/dct/train.py --cache .dct_cache --out models/training/dct/out/gate \
        --channels all --gate --feat-epochs 6

Resumable: OUT/ckpt.pt is written every --save-every steps and at the end of every epoch, and
a run with the same OUT continues from it. --init CKPT starts from another run's weights
(input channels mapped by index, gates dropped); --init-stem FILE.onnx from an exported stem.
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

from common import DEFAULT_TEACHER, input_stats
from stem import Stem, load_folded


def load_cache(path: str) -> dict:
    c = {"meta": json.load(open(os.path.join(path, "meta.json")))}
    for name in ("crop_feat", "crop_logits", "crop_image", "dct", "sample_crop", "sample_q", "sample_bytes"):
        c[name] = np.load(os.path.join(path, name + ".npy"), mmap_mode="r")
    n = c["meta"]["samples"]
    img_of_sample = np.asarray(c["crop_image"])[np.asarray(c["sample_crop"][:n])]
    val = np.isin(img_of_sample, c["meta"]["val_images"])
    c["train_idx"] = np.flatnonzero(~val)
    c["val_idx"] = np.flatnonzero(val)
    return c


def parse_channels(spec: str) -> list[int]:
    if spec == "all":
        return list(range(192))
    if os.path.isfile(spec):
        v = json.load(open(spec))
        return list(v["channels"] if isinstance(v, dict) else v)
    return [int(s) for s in spec.split(",")]


def batch(cache, idx, channels, device="cpu"):
    idx = np.sort(idx)
    x = torch.from_numpy(np.asarray(cache["dct"][idx][:, channels], dtype=np.float32))
    crops = np.asarray(cache["sample_crop"][idx])
    f = torch.from_numpy(np.asarray(cache["crop_feat"][crops], dtype=np.float32))
    lg = torch.from_numpy(np.asarray(cache["crop_logits"][crops], dtype=np.float32))
    q = np.asarray(cache["sample_q"][idx])
    return x.to(device), f.to(device), lg.to(device), q


def stats(cache, rng, n=1000):
    """Input normalisation and cut-tensor variance over n training samples."""
    return input_stats(cache, rng, "dct", n, 100, 1.0)


def init_from(stem: Stem, ck_path: str, cache=None):
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    src = {k: v for k, v in ck["model"].items() if not k.startswith("gate.") and k not in ("mean", "inv_std")}
    pos = {c: i for i, c in enumerate(ck["channels"])}
    w = src["inp.0.0.weight"]
    if ck.get("gate") and cache is not None:
        # The gated network computed W (g * x): scale each input column by the channel's
        # mean open probability, so that channels whose gates were closed (and whose
        # weights never trained) start at zero instead of injecting their random weights.
        p = mean_open(ck, cache)
        w = w * torch.from_numpy(p).float()[None, :, None, None]
        print(f"input columns scaled by mean gate-open probability ({int((p > 0.5).sum())} open)")
    cols = [pos[c] for c in stem.channels]
    src["inp.0.0.weight"] = w[:, cols]
    missing, unexpected = stem.load_state_dict(src, strict=False)
    missing = [m for m in missing if not m.startswith("gate.") and m not in ("mean", "inv_std")]
    if missing or unexpected:
        raise SystemExit(f"--init {ck_path}: missing {missing}, unexpected {unexpected}")
    print(f"initialised from {ck_path} ({len(ck['channels'])} channels -> {len(stem.channels)})")


def mean_open(ck, cache, n=500) -> np.ndarray:
    """Mean gate-open probability per channel of a gated checkpoint over n training samples."""
    g = Stem(ck["channels"], gate=True)
    g.load_state_dict(ck["model"])
    g.eval()
    idx = cache["train_idx"][:: max(1, len(cache["train_idx"]) // n)][:n]
    tot = torch.zeros(len(ck["channels"]))
    with torch.no_grad():
        for k in range(0, len(idx), 100):
            x, _, _, _ = batch(cache, idx[k : k + 100], ck["channels"])
            xn = (x - g.mean[None, :, None, None]) * g.inv_std[None, :, None, None]
            tot += torch.sigmoid(g.gate.logits(xn)).sum(0)
    return (tot / len(idx)).numpy()


def init_from_stem(stem: Stem, path: str):
    from export_stem import read_stem

    channels, mean, inv_std, folded, _ = read_stem(path)
    if channels != stem.channels:
        raise SystemExit(f"--init-stem {path}: its channels differ from --channels")
    load_folded(stem, folded)
    stem.mean.copy_(torch.from_numpy(mean))
    stem.inv_std.copy_(torch.from_numpy(inv_std))
    print(f"initialised from exported stem {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=".dct_cache")
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--channels", default="all", help="all, a channels.json, or a list")
    ap.add_argument("--gate", action="store_true")
    ap.add_argument("--target-open", type=int, default=24)
    ap.add_argument("--feat-epochs", type=float, default=4)
    ap.add_argument("--kl-epochs", type=float, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--kl-lr", type=float, default=5e-4)
    ap.add_argument("--feat-weight", type=float, default=1.0)
    ap.add_argument("--init")
    ap.add_argument("--init-stem")
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (smoke tests)")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--val-samples", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--select-only", action="store_true",
                    help="with --gate: write the gate statistics and the selection of OUT/ckpt.pt "
                         "(finished or not) and stop")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    cache = load_cache(args.cache)
    channels = parse_channels(args.channels)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    ck_path = os.path.join(args.out, "ckpt.pt")

    stem = Stem(channels, gate=args.gate)
    spe = max(1, len(cache["train_idx"]) // args.batch)
    feat_steps = int(round(args.feat_epochs * spe))
    kl_steps = int(round(args.kl_epochs * spe))
    total = feat_steps + kl_steps
    state = None
    if os.path.isfile(ck_path):
        state = torch.load(ck_path, map_location="cpu", weights_only=False)
        if state["channels"] != channels or state["gate"] != args.gate:
            raise SystemExit(f"{ck_path}: made with other --channels/--gate; use another --out")
        stem.load_state_dict(state["model"])
        fvar = state["fvar"]
        print(f"resuming {ck_path} at step {state['step']}")
    else:
        mean, std, fvar = stats(cache, rng)
        if args.init:
            init_from(stem, args.init, cache)
        if args.init_stem:
            init_from_stem(stem, args.init_stem)
        else:
            stem.mean.copy_(torch.from_numpy(mean[channels]).float())
            stem.inv_std.copy_(torch.from_numpy(1.0 / std[channels]).float())
    fvar_t = torch.from_numpy(np.asarray(fvar)).float()[None, :, None, None]
    if args.select_only:
        if not (args.gate and state is not None):
            raise SystemExit("--select-only needs --gate and an OUT/ckpt.pt")
        gate_stats(stem, cache, channels, args)
        return 0

    tail = None
    if kl_steps > 0 or args.val_samples > 0:
        from onnx_torch import OnnxNet

        tail = OnnxNet(args.teacher, fake_quant=False).eval()

    params = [p for p in stem.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    step, lam = 0, 0.0
    log = []
    if state is not None:
        opt.load_state_dict(state["opt"])
        step, lam, log = state["step"], state["lam"], state["log"]
        rng = np.random.default_rng(args.seed + step)

    def lr_at(s):
        if s < feat_steps:
            return args.lr * 0.5 * (1 + math.cos(math.pi * s / max(1, feat_steps)))
        k = s - feat_steps
        return args.kl_lr * 0.5 * (1 + math.cos(math.pi * k / max(1, kl_steps)))

    def save(final=False):
        ck = {
            "model": stem.state_dict(), "opt": opt.state_dict(), "step": step, "lam": lam,
            "log": log, "channels": channels, "gate": args.gate, "fvar": np.asarray(fvar),
            "args": vars(args),
            "summary": {"channels": len(channels), "steps": step, "feat_steps": feat_steps,
                        "kl_steps": kl_steps, "batch": args.batch, "final": final,
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
                x, f, lg, q = batch(cache, vi[k : k + 50], channels)
                y, _ = stem(x)
                fl += float((((y - f) ** 2) / fvar_t).mean()) * len(q)
                if tail is not None:
                    s = tail.tail(y)
                    ok = (s.argmax(1) == lg.argmax(1)).numpy()
                    agree += int(ok.sum())
                    for qq, o in zip(q, ok):
                        b = "q10-39" if qq < 40 else ("q40-69" if qq < 70 else "q70-95")
                        byq.setdefault(b, []).append(int(o))
                n += len(q)
        stem.train()
        r = {"val_feat": fl / max(1, n)}
        if tail is not None:
            r["val_agree"] = agree / max(1, n)
            r.update({f"agree_{b}": float(np.mean(v)) for b, v in sorted(byq.items())})
        return r

    stem.train()
    t0 = time.time()
    last_print = time.time()
    run = {"feat": 0.0, "kl": 0.0, "open": 0.0, "n": 0}
    perm = rng.permutation(cache["train_idx"])
    pos = (step * args.batch) % len(perm)
    stop = total if args.max_steps is None else min(total, step + args.max_steps)
    while step < stop:
        if pos + args.batch > len(perm):
            perm, pos = rng.permutation(cache["train_idx"]), 0
        idx = perm[pos : pos + args.batch]
        pos += args.batch
        x, f, lg, _ = batch(cache, idx, channels)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        y, probs = stem(x)
        feat_loss = (((y - f) ** 2) / fvar_t).mean()
        loss = args.feat_weight * feat_loss if step >= feat_steps else feat_loss
        if step >= feat_steps:
            s = tail.tail(y)
            kl = F.kl_div(F.log_softmax(s, 1), F.log_softmax(lg, 1), log_target=True, reduction="batchmean")
            loss = loss + kl
            run["kl"] += float(kl.detach())
        if probs is not None:
            open_frac = probs.mean()
            loss = loss + lam * open_frac
            lam = max(0.0, lam + 0.01 * (float(open_frac.detach()) - args.target_open / len(channels)))
            run["open"] += float(open_frac.detach()) * len(channels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run["feat"] += float(feat_loss.detach())
        run["n"] += 1
        step += 1
        end_epoch = step % spe == 0 or step == total
        if time.time() - last_print > 60 or end_epoch or step == stop:
            n = max(1, run["n"])
            rec = {"step": step, "epoch": round(step / spe, 2), "phase": "kl" if step > feat_steps else "feature",
                   "feat": run["feat"] / n, "lr": lr_at(step - 1), "s": round(time.time() - t0)}
            if step > feat_steps:
                rec["kl"] = run["kl"] / n
            if probs is not None:
                rec["open"] = run["open"] / n
                rec["lambda"] = lam
            if end_epoch or step == stop:
                rec.update(validate())
            log.append(rec)
            print(json.dumps(rec), flush=True)
            run = {"feat": 0.0, "kl": 0.0, "open": 0.0, "n": 0}
            last_print = time.time()
        if step % args.save_every == 0 or end_epoch:
            save()
    save(final=step >= total)
    if args.gate and (step >= total or args.max_steps is not None):
        gate_stats(stem, cache, channels, args)
    print(f"{ck_path}: step {step}/{total}")
    return 0


def gate_stats(stem, cache, channels, args):
    """Mean open probability of every channel over the training samples (all qualities),
    and the --target-open most open channels."""
    stem.eval()
    idx = cache["train_idx"]
    tot = torch.zeros(len(channels))
    byq = {}
    with torch.no_grad():
        for k in range(0, len(idx), 100):
            x, _, _, q = batch(cache, idx[k : k + 100], channels)
            xn = (x - stem.mean[None, :, None, None]) * stem.inv_std[None, :, None, None]
            p = torch.sigmoid(stem.gate.logits(xn))
            tot += p.sum(0)
            for qq, pp in zip(q, p):
                b = int(qq) // 10 * 10
                byq.setdefault(b, []).append(pp.numpy())
    mean = (tot / len(idx)).numpy()
    order = np.argsort(-mean, kind="stable")
    top = sorted(int(channels[i]) for i in order[: args.target_open])
    stats = {
        "rule": f"the {args.target_open} channels with the highest mean gate-open probability "
                f"over the {len(idx)} training samples (JPEG qualities "
                f"{cache['meta']['qualities'][0]}..{cache['meta']['qualities'][1]})",
        "mean_open": {int(c): float(v) for c, v in zip(channels, mean)},
        "rank": [int(channels[i]) for i in order],
        "mean_open_by_quality": {str(b): np.mean(v, 0).round(4).tolist() for b, v in sorted(byq.items())},
    }
    with open(os.path.join(args.out, "gate_stats.json"), "w") as fh:
        json.dump(stats, fh, indent=1)
    with open(os.path.join(args.out, "channels.json"), "w") as fh:
        json.dump({"channels": top, "rule": stats["rule"]}, fh, indent=1)
    print("selected channels:", top)


if __name__ == "__main__":
    sys.exit(main())
