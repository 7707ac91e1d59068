"""Trains the latent detection stem by distillation from YOLOX-Nano's backbone (the teacher,
on the clean letterboxed picture), on the cache of build_det_cache: the feature (and, with
--head-weight, head) loss of stems.trainer.DetectorTrainer. One stem serves all qualities:
each sample of a batch takes the coding of a random zoo model.

    python -m icm_training.latent.train_det --cache .latent_det_cache \
        --out models/training/out/latent/d1 --steps 3000

Resumable: OUT/ckpt.pt is written every --save-every steps and at the end; a run with the
same OUT continues from it. --init CKPT starts from another run's
weights (and its target variances) with a new schedule. --partial trains on the finished
pictures of a cache still being built (and takes newly finished ones at each pass). Every
25th picture of the cache is held out; a JSON line per minute gives the training loss, and
every --val-every steps the held-out loss per output and per quality.
"""
from __future__ import annotations

import sys

from ..stems.trainer import DetectorTrainer, detector_parser
from .stem import DetStem


class DetTrainer(DetectorTrainer):
    stem_class = DetStem


def main(argv=None) -> int:
    return DetTrainer(detector_parser(__doc__).parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
