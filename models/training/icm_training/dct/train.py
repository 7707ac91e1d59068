"""Trains a DCT stem by distillation from the shared MobileNetV2 (the teacher, on the clean
RGB crop), on the cache of build_cache: the feature and KL phases of
stems.trainer.ClassifierTrainer.

With --gate, phase 1 trains the channel gates too (stem.Gate), with a penalty on the
expected fraction of open gates whose weight follows a dual-ascent rule so that about
--target-open channels stay open on average; at the end the mean open probability of every
channel over the training samples is written to OUT/gate_stats.json and the --target-open
most open channels, ascending, to OUT/channels.json.

    python -m icm_training.dct.train --cache .dct_cache --out models/training/out/dct/gate \
        --channels all --gate --feat-epochs 6

Resumable: OUT/ckpt.pt is written every --save-every steps and at the end of every epoch, and
a run with the same OUT continues from it. --init CKPT starts from another run's weights
(input channels mapped by index, gates dropped, input columns scaled by the gates' mean open
probability); --init-stem FILE.onnx from an exported stem.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from ..stems.cache import crop_batch
from ..stems.classifier import DCT_CUT
from ..stems.trainer import ClassifierTrainer, classifier_parser
from .inputs import CHANNELS
from .stem import Stem


def parse_channels(spec: str) -> list[int]:
    """--channels: all, a channels.json, or a comma-separated list."""
    if spec == "all":
        return list(range(CHANNELS))
    if os.path.isfile(spec):
        with open(spec) as fh:
            v = json.load(fh)
        return list(v["channels"] if isinstance(v, dict) else v)
    return [int(s) for s in spec.split(",")]


def open_probabilities(stem: Stem, cache, idx, chunk: int = 100):
    """Gate-open probabilities (N, C) of the samples idx, and their qualities."""
    probs, qs = [], []
    with torch.no_grad():
        for k in range(0, len(idx), chunk):
            x, _, _, q = crop_batch(cache, idx[k : k + chunk], "dct", stem.channels)
            probs.append(stem.open_probabilities(x))
            qs.append(q)
    return torch.cat(probs).numpy(), np.concatenate(qs)


class DctTrainer(ClassifierTrainer):
    input_key, cut = "dct", DCT_CUT
    stats_sampling = (1000, 100, 1.0)

    def __init__(self, args):
        self.channels = parse_channels(args.channels)
        self.lam = 0.0  # the weight of the open-gate penalty
        super().__init__(args)

    def make_stem(self):
        return Stem(self.channels, gate=self.args.gate)

    def resume(self, state):
        if state["channels"] != self.channels or state["gate"] != self.args.gate:
            raise SystemExit(f"{self.ck_path}: made with other --channels/--gate; use another --out")
        self.lam = state["lam"]

    def init_from(self, path):
        ck = torch.load(path, map_location="cpu", weights_only=False)
        src = {k: v for k, v in ck["model"].items() if not k.startswith("gate.") and k not in ("mean", "inv_std")}
        w = src["inp.0.0.weight"]
        if ck.get("gate"):
            # The gated network computed W (g * x): scale each input column by the channel's
            # mean open probability, so that channels whose gates were closed (and whose
            # weights never trained) start at zero instead of injecting their random weights.
            g = Stem(ck["channels"], gate=True)
            g.load_state_dict(ck["model"])
            g.eval()
            train = self.cache["train_idx"]
            p = open_probabilities(g, self.cache, train[:: max(1, len(train) // 500)][:500])[0].mean(0)
            w = w * torch.from_numpy(p).float()[None, :, None, None]
            print(f"input columns scaled by mean gate-open probability ({int((p > 0.5).sum())} open)")
        pos = {c: i for i, c in enumerate(ck["channels"])}
        src["inp.0.0.weight"] = w[:, [pos[c] for c in self.channels]]
        missing, unexpected = self.stem.load_state_dict(src, strict=False)
        missing = [m for m in missing if not m.startswith("gate.") and m not in ("mean", "inv_std")]
        if missing or unexpected:
            raise SystemExit(f"--init {path}: missing {missing}, unexpected {unexpected}")
        print(f"initialised from {path} ({len(ck['channels'])} channels -> {len(self.channels)})")

    def stem_metadata(self):
        return {"icm.channels": json.dumps(self.channels)}

    def band(self, q):
        return "q10-39" if q < 40 else ("q40-69" if q < 70 else "q70-95")

    def penalty(self, probs, metrics):
        if probs is None:
            return 0.0
        frac = probs.mean()
        loss = self.lam * frac
        f = float(frac.detach())
        self.lam = max(0.0, self.lam + 0.01 * (f - self.args.target_open / len(self.channels)))
        metrics["open"] = f * len(self.channels)
        return loss

    def record(self, sums, n, seconds):
        rec = super().record(sums, n, seconds)
        if self.args.gate:
            rec.update({"open": sums["open"] / n, "lambda": self.lam})
        return rec

    def state(self):
        return {"lam": self.lam, "channels": self.channels, "gate": self.args.gate}

    def summary(self):
        return {"channels": len(self.channels), **super().summary()}

    def run(self):
        if not self.args.select_only:
            return super().run()
        if not (self.args.gate and self.resumed):
            raise SystemExit("--select-only needs --gate and an OUT/ckpt.pt")
        self.gate_stats()
        return 0

    def finish(self):
        if self.args.gate and (self.step >= self.total or self.args.max_steps is not None):
            self.gate_stats()

    def gate_stats(self):
        """Mean open probability of every channel over the training samples (all qualities),
        and the --target-open most open channels."""
        self.stem.eval()
        idx, channels = self.cache["train_idx"], self.channels
        p, q = open_probabilities(self.stem, self.cache, idx)
        mean = p.mean(0)
        order = np.argsort(-mean, kind="stable")
        top = sorted(int(channels[i]) for i in order[: self.args.target_open])
        byq = {b: p[q // 10 * 10 == b].mean(0).round(4).tolist() for b in sorted(set((q // 10 * 10).tolist()))}
        lo, hi = self.cache["meta"]["qualities"]
        stats = {
            "rule": f"the {self.args.target_open} channels with the highest mean gate-open probability "
                    f"over the {len(idx)} training samples (JPEG qualities {lo}..{hi})",
            "mean_open": {int(c): float(v) for c, v in zip(channels, mean)},
            "rank": [int(channels[i]) for i in order],
            "mean_open_by_quality": {str(b): v for b, v in byq.items()},
        }
        with open(os.path.join(self.args.out, "gate_stats.json"), "w") as fh:
            json.dump(stats, fh, indent=1)
        with open(os.path.join(self.args.out, "channels.json"), "w") as fh:
            json.dump({"channels": top, "rule": stats["rule"]}, fh, indent=1)
        print("selected channels:", top)


def main(argv=None) -> int:
    ap = classifier_parser(__doc__, ".dct_cache", 400)
    ap.add_argument("--channels", default="all", help="all, a channels.json, or a list")
    ap.add_argument("--gate", action="store_true")
    ap.add_argument("--target-open", type=int, default=24)
    ap.add_argument("--select-only", action="store_true",
                    help="with --gate: write the gate statistics and the selection of OUT/ckpt.pt "
                         "(finished or not) and stop")
    return DctTrainer(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
