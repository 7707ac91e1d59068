"""The training recipe of icm, one package run from the repository root as
`python -m icm_training.<module>` (models/training/README.md):

- the float model zoo: model, train, export, eval_kodak, plot_losses, prepare_data,
  make_manifest;
- the machine fine-tune: train_machine, probe_features;
- the task stems: stems (the toolkit: cache, training loop, ONNX export, the teachers),
  dct and latent (the two input domains).

The recipe works on the checkout it lives in (install it editable: `pip install -e
models/training`): the paths below are those of that checkout.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the repository
SHARED = ROOT.parent / "shared"
OUT = ROOT / "models" / "training" / "out"  # git-ignored outputs
CLASSIFIER = SHARED / "models" / "classification" / "mobilenet_v2_1.0_224_quant.onnx"
DETECTOR = SHARED / "models" / "yolox_nano" / "yolox_nano.onnx"
