"""The training loop of the stems and the two distillations built on it.

Trainer: one run in OUT: the stem, AdamW (weight decay 1e-4), the step count and the log.
OUT/ckpt.pt is written every --save-every steps, at the end of every epoch and at the end,
and a run started again with the same OUT continues from it (--max-steps stops a run early,
for smoke tests). A JSON line is printed (and kept in the checkpoint's log) every minute and
at each validation. Subclasses give the cache, the stem, its initialisation, the schedule,
the loss of a batch and the validation.

ClassifierTrainer: a classifier stem distilled from the shared MobileNetV2 (the teacher, on
the clean crop) on a crop cache; phases by step:
  1. feature: the stem's output against the teacher's cut tensor, squared error per channel
     divided by the teacher's variance of that channel (only the stem runs);
  2. kl: the stem followed by the frozen tail of the classifier (onnx_torch.OnnxNet fed at
     the cut, float activations), loss = KL(teacher || student) of the output distribution
     + --feat-weight x the feature loss.
The learning rate follows a cosine per phase (--lr, --kl-lr). Validation at each epoch's
end: val_feat, and val_agree: top-1 agreement with the teacher on the held-out pictures,
overall and per quality band (agree_*).

DetectorTrainer: a detector stem distilled from YOLOX-Nano's backbone (on the clean
letterboxed picture) on a letterbox cache: for each of dark3, dark4, dark5 the squared
error divided by the teacher's variance of that channel, averaged over elements; the three
averaged (the feature loss). With --head-weight W > 0, plus W times a head loss: the
detector's frozen neck and head (detector.torch_head, float, in PyTorch) run on the
student's and on the teacher's backbone outputs, and per anchor point the binary
cross-entropy of the student's objectness against the teacher's (mean over points), the
teacher's objectness times the cross-entropy of the class probabilities (mean over classes)
and times the L1 distance of the box regression (grid units, log sizes, mean of the four),
those two divided by the sum of the teacher's objectness; the cross-entropies weighted by
HEAD_CE. Each sample of a batch takes the coding of a random quality. Validation every
--val-every steps: the held-out loss per output and per quality.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .blocks import macs
from .cache import crop_batch, input_stats, read_crop_cache, read_letterbox_cache
from .classifier import DEFAULT_TEACHER, Cut
from .detector import CUT_NAMES, DEFAULT_DETECTOR
from .export import load_stem


class Trainer:
    """One resumable training run (module docstring)."""

    def __init__(self, args):
        self.args = args
        torch.set_num_threads(args.threads)
        os.makedirs(args.out, exist_ok=True)
        self.cache = self.load_cache()
        self.rng = np.random.default_rng(args.seed)
        torch.manual_seed(args.seed)
        self.ck_path = os.path.join(args.out, "ckpt.pt")
        self.stem = self.make_stem()
        self.total = self.schedule()
        self.step, self.log = 0, []
        state = None
        if os.path.isfile(self.ck_path):
            state = torch.load(self.ck_path, map_location="cpu", weights_only=False)
            self.resume(state)
            self.stem.load_state_dict(state["model"])
            self.fvar = state["fvar"]
            print(f"resuming {self.ck_path} at step {state['step']}")
        else:
            self.fvar = self.initialise()
        self.resumed = state is not None
        params = [p for p in self.stem.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
        if state is not None:
            self.opt.load_state_dict(state["opt"])
            self.step, self.log = state["step"], state["log"]
            self.rng = np.random.default_rng(args.seed + self.step)

    # What the subclasses give.
    def load_cache(self) -> dict: ...
    def make_stem(self) -> torch.nn.Module: ...
    def schedule(self) -> int: ...  # total steps
    def initialise(self): ...  # a fresh run: initialises the stem, returns the target variances
    def prepare(self) -> None: ...  # before the first step
    def lr_at(self, step: int) -> float: ...
    def loss(self, ids) -> tuple[torch.Tensor, dict]: ...  # (loss, {metric: value})
    def record(self, sums: dict, n: int, seconds: int) -> dict: ...  # a log line
    def validate(self) -> dict: ...
    def validation_due(self) -> bool: ...

    def resume(self, state: dict) -> None:
        """Checks (and takes from) the checkpoint a run continues from."""

    def epoch_end(self) -> bool:
        return False

    def state(self) -> dict:
        """More checkpoint entries."""
        return {}

    def summary(self) -> dict:
        """More entries of the checkpoint's summary (the exported stem's `icm.training`)."""
        return {}

    def finish(self) -> None:
        """After the last step."""

    def save(self, final: bool = False) -> None:
        ck = {
            "model": self.stem.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
            "log": self.log, "fvar": self.fvar, "args": vars(self.args), **self.state(),
            "summary": {"steps": self.step, **self.summary(), "batch": self.args.batch,
                        "final": final, "samples": int(len(self.cache["train_idx"])),
                        "last": self.log[-1] if self.log else None},
        }
        torch.save(ck, self.ck_path + ".tmp")
        os.replace(self.ck_path + ".tmp", self.ck_path)

    def run(self) -> int:
        args = self.args
        self.prepare()
        self.stem.train()
        t0 = last = time.time()
        sums, n = {}, 0
        perm = self.rng.permutation(self.cache["train_idx"])
        pos = (self.step * args.batch) % len(perm)
        self.stop = self.total if args.max_steps is None else min(self.total, self.step + args.max_steps)
        while self.step < self.stop:
            if pos + args.batch > len(perm):
                if getattr(args, "partial", False):
                    self.cache = self.load_cache()  # pictures finished since
                perm, pos = self.rng.permutation(self.cache["train_idx"]), 0
            ids = perm[pos : pos + args.batch]
            pos += args.batch
            for g in self.opt.param_groups:
                g["lr"] = self.lr_at(self.step)
            loss, metrics = self.loss(ids)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            self.step += 1
            due = self.validation_due()
            if time.time() - last > 60 or due:
                rec = self.record(sums, n, round(time.time() - t0))
                if due:
                    rec.update(self.validate())
                self.log.append(rec)
                print(json.dumps(rec), flush=True)
                sums, n, last = {}, 0, time.time()
            if self.step % args.save_every == 0 or self.epoch_end():
                self.save()
        self.save(final=self.step >= self.total)
        self.finish()
        print(f"{self.ck_path}: step {self.step}/{self.total}")
        return 0


def classifier_parser(doc: str, cache: str, val_samples: int) -> argparse.ArgumentParser:
    """The options of every classifier stem trainer."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--cache", default=cache)
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--feat-epochs", type=float, default=4)
    ap.add_argument("--kl-epochs", type=float, default=0)
    ap.add_argument("--feat-steps", type=int, help="feature steps (instead of --feat-epochs)")
    ap.add_argument("--kl-steps", type=int, help="KL steps (instead of --kl-epochs)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--kl-lr", type=float, default=5e-4)
    ap.add_argument("--feat-weight", type=float, default=1.0)
    ap.add_argument("--init", help="a checkpoint of another run")
    ap.add_argument("--init-stem", help="an exported stem (.onnx)")
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (smoke tests)")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--val-samples", type=int, default=val_samples)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    return ap


class ClassifierTrainer(Trainer):
    """Feature then KL distillation of a classifier stem (module docstring)."""

    input_key: str  # the stem input in the crop cache
    cut: Cut  # the tensor the stem replaces
    stats_sampling = (1000, 100, 1.0)  # input statistics: samples, chunk, std floor
    warmup = 0  # steps of linear warm-up at the start of the feature phase
    channels = None  # the input channels the stem reads (None: all)

    def load_cache(self):
        return read_crop_cache(self.args.cache, self.input_key, getattr(self.args, "partial", False))

    def schedule(self):
        a = self.args
        self.spe = max(1, len(self.cache["train_idx"]) // a.batch)
        self.feat_steps = a.feat_steps if a.feat_steps is not None else int(round(a.feat_epochs * self.spe))
        self.kl_steps = a.kl_steps if a.kl_steps is not None else int(round(a.kl_epochs * self.spe))
        return self.feat_steps + self.kl_steps

    def initialise(self):
        mean, std, fvar = input_stats(self.cache, self.rng, self.input_key, *self.stats_sampling)
        sel = slice(None) if self.channels is None else self.channels
        self.stem.mean.copy_(torch.from_numpy(mean[sel]).float())
        self.stem.inv_std.copy_(torch.from_numpy(1.0 / std[sel]).float())
        if self.args.init:
            self.init_from(self.args.init)
        if self.args.init_stem:
            load_stem(self.stem, self.args.init_stem, self.stem_metadata())
        return np.asarray(fvar)

    def init_from(self, path: str) -> None:
        """--init: the weights (and normalisation) of another run's checkpoint."""
        ck = torch.load(path, map_location="cpu", weights_only=False)
        self.stem.load_state_dict(ck["model"])
        print(f"initialised from {path}")

    def stem_metadata(self) -> dict:
        """What the metadata of a stem file for --init-stem must hold."""
        return {}

    def band(self, q: int) -> str:
        """The validation's quality band of a sample of quality q."""
        return f"q{q}"

    def penalty(self, probs, metrics: dict):
        """A loss term on the gates' open probabilities (gated stems)."""
        return 0.0

    def prepare(self):
        self.fvar_t = torch.from_numpy(np.asarray(self.fvar)).float()[None, :, None, None]
        self.tail = None
        if self.kl_steps > 0 or self.args.val_samples > 0:
            from .onnx_torch import OnnxNet, find_tensor

            self.tail = OnnxNet(self.args.teacher, fake_quant=False).eval()
            self.cut_name = find_tensor(self.tail.model, self.cut.suffix, "Conv")

    def lr_at(self, s):
        if s < self.feat_steps:
            warm = min(1.0, (s + 1) / self.warmup) if self.warmup else 1.0
            return warm * self.args.lr * 0.5 * (1 + math.cos(math.pi * s / max(1, self.feat_steps)))
        k = s - self.feat_steps
        return self.args.kl_lr * 0.5 * (1 + math.cos(math.pi * k / max(1, self.kl_steps)))

    def batch(self, ids):
        return crop_batch(self.cache, ids, self.input_key, self.channels)

    def loss(self, ids):
        x, f, lg, _ = self.batch(ids)
        y, probs = self.stem.gated(x)
        feat = (((y - f) ** 2) / self.fvar_t).mean()
        metrics = {"feat": float(feat.detach())}
        loss = feat
        if self.step >= self.feat_steps:
            s = self.tail.tail(self.cut_name, y)
            kl = F.kl_div(F.log_softmax(s, 1), F.log_softmax(lg, 1), log_target=True, reduction="batchmean")
            loss = self.args.feat_weight * feat + kl
            metrics["kl"] = float(kl.detach())
        return loss + self.penalty(probs, metrics), metrics

    def record(self, sums, n, seconds):
        kl = self.step > self.feat_steps
        rec = {"step": self.step, "epoch": round(self.step / self.spe, 2), "phase": "kl" if kl else "feature",
               "feat": sums["feat"] / n, "lr": self.lr_at(self.step - 1), "s": seconds}
        if kl:
            rec["kl"] = sums.get("kl", 0.0) / n
        return rec

    def epoch_end(self):
        return self.step % self.spe == 0 or self.step == self.total

    def validation_due(self):
        return self.epoch_end() or self.step == self.stop

    def validate(self):
        a, stem, val = self.args, self.stem, self.cache["val_idx"]
        stem.eval()
        vi = val[:: max(1, len(val) // max(1, a.val_samples))][: a.val_samples]
        fl, agree, n, byq = 0.0, 0, 0, {}
        with torch.no_grad():
            for k in range(0, len(vi), 50):
                x, f, lg, q = self.batch(vi[k : k + 50])
                y = stem(x)
                fl += float((((y - f) ** 2) / self.fvar_t).mean()) * len(q)
                if self.tail is not None:
                    ok = (self.tail.tail(self.cut_name, y).argmax(1) == lg.argmax(1)).numpy()
                    agree += int(ok.sum())
                    for qq, o in zip(q, ok):
                        byq.setdefault(self.band(int(qq)), []).append(int(o))
                n += len(q)
        stem.train()
        r = {"val_feat": fl / max(1, n)}
        if self.tail is not None:
            r["val_agree"] = agree / max(1, n)
            r.update({f"agree_{b}": round(float(np.mean(v)), 4) for b, v in sorted(byq.items())})
        return r

    def summary(self):
        return {"feat_steps": self.feat_steps, "kl_steps": self.kl_steps}


def detector_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the detector stem trainer."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
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
    return ap


class DetectorTrainer(Trainer):
    """Feature (and head) distillation of a detector stem (module docstring). --init starts
    from another run's weights and target variances with a new schedule."""

    # Weight of the two cross-entropies of the head loss against the box term: at the start
    # of a head phase (from a feature-loss stem) they are about 0.03 each, the box term about 1.
    HEAD_CE = 10.0
    HEAD_TERMS = ("obj", "cls", "box")
    stem_class: type  # the stem, made from its input channels

    def load_cache(self):
        cache = read_letterbox_cache(self.args.cache, CUT_NAMES, self.args.partial)
        if len(cache["train_idx"]) == 0:
            raise SystemExit(f"{self.args.cache}: no training samples yet")
        return cache

    def make_stem(self):
        return self.stem_class(self.cache["x"].shape[2])

    def schedule(self):
        return self.args.steps

    def initialise(self):
        if self.args.init:
            ck = torch.load(self.args.init, map_location="cpu", weights_only=False)
            self.stem.load_state_dict(ck["model"])
            print(f"initialised from {self.args.init} (step {ck['step']})")
            return ck["fvar"]
        mean, std, fmean, fvar = self.stats()
        self.stem.mean.copy_(torch.from_numpy(mean).float())
        self.stem.inv_std.copy_(torch.from_numpy(1.0 / std).float())
        with torch.no_grad():  # start each output at the teacher's channel means (loss 1)
            for conv, fm in zip(self.stem.outputs(), fmean):
                conv.weight.mul_(0.01)
                conv.bias.copy_(torch.from_numpy(fm).float())
        return fvar

    def stats(self, n=400):
        """Per-channel mean and std of the stem input, per-channel mean and variance of each
        target, over n training samples."""
        c, rng = self.cache, self.rng
        idx = np.sort(rng.choice(c["train_idx"], size=min(n, len(c["train_idx"])), replace=False))
        q = rng.integers(0, c["x"].shape[1], size=len(idx))
        x = np.stack([c["x"][i, qq] for i, qq in zip(idx, q)]).astype(np.float64)
        mean = x.mean(axis=(0, 2, 3))
        std = np.maximum(x.std(axis=(0, 2, 3)), 1e-2)
        t = [c[k][idx].astype(np.float64) for k in CUT_NAMES]
        return mean, std, [v.mean(axis=(0, 2, 3)) for v in t], [np.maximum(v.var(axis=(0, 2, 3)), 1e-4) for v in t]

    def prepare(self):
        self.fvar_t = [torch.from_numpy(np.asarray(v)).float()[None, :, None, None] for v in self.fvar]
        self.n_q = self.cache["x"].shape[1]
        self.macs = macs(self.stem, *self.cache["x"].shape[-2:])
        self.head = None
        if self.args.head_weight > 0:
            from .detector import torch_head

            self.head = torch_head(self.args.detector)

    def lr_at(self, s):
        warm = min(1.0, (s + 1) / 100)
        return warm * self.args.lr * 0.5 * (1 + math.cos(math.pi * min(s, self.total) / max(1, self.total)))

    def batch(self, idx, qidx):
        """Stem inputs (sample idx[k] coded at quality index qidx[k]) and the three targets."""
        order = np.argsort(idx)  # memmap reads in file order
        idx, qidx = np.asarray(idx)[order], np.asarray(qidx)[order]
        x = np.stack([self.cache["x"][i, q] for i, q in zip(idx, qidx)]).astype(np.float32)
        return torch.from_numpy(x), [torch.from_numpy(self.cache[k][idx].astype(np.float32)) for k in CUT_NAMES]

    def feature_losses(self, outs, ts):
        return [(((o - t) ** 2) / v).mean() for o, t, v in zip(outs, ts, self.fvar_t)]

    def head_losses(self, outs, ts):
        """(objectness, class, box) losses of the frozen head on the student's outputs
        against its outputs on the teacher's (module docstring)."""
        def flat(levels):
            return torch.cat([v.flatten(2) for v in levels], 2)  # (N, 85, points)

        with torch.no_grad():
            t = flat(self.head(*ts))
        p = flat(self.head(*outs))
        eps = 1e-6
        t_obj, p_obj = t[:, 4], p[:, 4].clamp(eps, 1 - eps)
        obj = F.binary_cross_entropy(p_obj, t_obj)
        w = t_obj / t_obj.sum().clamp_min(eps)
        cls = F.binary_cross_entropy(p[:, 5:].clamp(eps, 1 - eps), t[:, 5:], reduction="none").mean(1)
        box = (p[:, :4] - t[:, :4]).abs().mean(1)
        return obj, (w * cls).sum(), (w * box).sum()

    def loss(self, ids):
        x, ts = self.batch(ids, self.rng.integers(0, self.n_q, size=len(ids)))
        outs = self.stem(x)
        ls = self.feature_losses(outs, ts)
        loss = sum(ls) / 3
        metrics = {k: float(v.detach()) for k, v in zip(CUT_NAMES, ls)}
        if self.head is not None:
            hl = self.head_losses(outs, ts)
            loss = loss + self.args.head_weight * (self.HEAD_CE * (hl[0] + hl[1]) + hl[2])
            metrics.update({f"head_{k}": float(v.detach()) for k, v in zip(self.HEAD_TERMS, hl)})
        return loss, metrics

    def record(self, sums, n, seconds):
        rec = {"step": self.step, "loss": sum(sums[k] for k in CUT_NAMES) / 3 / n,
               **{k: round(sums[k] / n, 4) for k in CUT_NAMES}, "lr": self.lr_at(self.step - 1),
               "samples": int(len(self.cache["train_idx"])), "s": seconds}
        rec.update({k: round(v / n, 4) for k, v in sums.items() if k.startswith("head_")})
        return rec

    def validation_due(self):
        return self.step % self.args.val_every == 0 or self.step == self.stop

    def validate(self):
        a, stem, val = self.args, self.stem, self.cache["val_idx"]
        if a.val_samples <= 0:
            return {}
        stem.eval()
        vi = val[:: max(1, len(val) // max(1, a.val_samples))][: a.val_samples]
        per_map, per_head, by_q, n = np.zeros(3), np.zeros(3), {}, 0
        with torch.no_grad():
            for q in range(self.n_q):
                for k in range(0, len(vi), 24):
                    ids = vi[k : k + 24]
                    x, ts = self.batch(ids, np.full(len(ids), q))
                    outs = stem(x)
                    ls = [float(v) for v in self.feature_losses(outs, ts)]
                    per_map += np.asarray(ls) * len(ids)
                    if self.head is not None:
                        per_head += np.asarray([float(v) for v in self.head_losses(outs, ts)]) * len(ids)
                    by_q.setdefault(f"val_q{q + 1}", []).append((np.mean(ls), len(ids)))
                    n += len(ids)
        stem.train()
        r = {"val": float(per_map.sum() / 3 / max(1, n))}
        r.update({f"val_{name}": round(float(v / max(1, n)), 4) for name, v in zip(CUT_NAMES, per_map)})
        r.update({k: round(sum(m * c for m, c in v) / sum(c for _, c in v), 4) for k, v in by_q.items()})
        if self.head is not None:
            r.update({f"val_head_{k}": round(float(v / max(1, n)), 4) for k, v in zip(self.HEAD_TERMS, per_head)})
        return r

    def summary(self):
        return {"qualities": self.n_q, "macs": self.macs}
