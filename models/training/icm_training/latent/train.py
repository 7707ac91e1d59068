"""Trains the latent classifier stem by distillation from the shared MobileNetV2 (the
teacher, on the clean RGB crop), on the cache of build_cache: the feature and KL phases of
stems.trainer.ClassifierTrainer at the stride-16 cut (the learning rate warms up over the
first 100 steps). One stem serves all qualities: each batch mixes samples of every zoo
model.

    python -m icm_training.latent.train --cache .latent_cache --out models/training/out/latent/s1

Resumable: OUT/ckpt.pt is written every --save-every steps and at the end of every epoch,
and a run with the same OUT continues from it (--feat-steps/--kl-steps fix the schedule
when the cache grows between runs: --partial trains on the finished pictures of a cache
still being built). --init CKPT starts from another run's weights, --init-stem FILE.onnx
from an exported stem. Logs: one JSON line per minute and per epoch (val_feat; val_agree:
top-1 agreement with the teacher on the held-out pictures, overall and per quality).
"""
from __future__ import annotations

import sys

from ..stems.classifier import LATENT_CUT
from ..stems.trainer import ClassifierTrainer, classifier_parser
from .stem import LatentStem


class LatentTrainer(ClassifierTrainer):
    input_key, cut = "latents", LATENT_CUT
    stats_sampling = (2000, 200, 0.05)
    warmup = 100

    def make_stem(self):
        return LatentStem(self.cache["latents"].shape[1])

    def stem_metadata(self):
        return {"icm.input": "latents"}


def main(argv=None) -> int:
    ap = classifier_parser(__doc__, ".latent_cache", 600)
    ap.add_argument("--partial", action="store_true",
                    help="train on the finished part of a cache still being built")
    return LatentTrainer(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
