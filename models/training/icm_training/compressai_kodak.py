"""CompressAI's own `compress`/`decompress` of a checkpoint on Kodak: the reference that icm's
import of CompressAI models is held to (bpp within 1 %, PSNR within 0.05 dB).

The checkpoint is either CompressAI's training dict (`{"state_dict": ..., ...}`, zip or legacy
serialisation) or a plain state_dict (the zoo's); a `module.` prefix (DataParallel) is
dropped. N and M are read from the tensor shapes (`g_a.0.weight`, `g_a.6.weight`), the model
is built like `from_state_dict`, put in eval mode and `net.update()`d only when it carries no
CDFs (`--force-update` recomputes them, as CompressAI's eval_model does by default).

For every PNG of --images (sorted): x in [0,1] (1x3xHxW float32), padded to multiples of 64
by replicating the last row/column (bottom/right, as icm does) only when needed;
`out = net.compress(x)`, `net.decompress(out["strings"], out["shape"])`; bytes = the sum of
the lengths of all strings; bpp = 8 bytes / (H W); the reconstruction is
round(clamp(x_hat, 0, 1) * 255) as uint8 cropped to HxW; PSNR over the RGB samples. Compress
and decompress are timed separately (perf_counter, under torch.inference_mode(), with
--threads torch threads).

Outputs: -o RESULTS.json (per image name, width, height, bytes, bpp, psnr, encode_s,
decode_s, and the means); --recon DIR: the reconstructions as PNG (same names); --latents DIR:
per image three .npy files `<stem>.z_symbols.npy`, `<stem>.y_symbols.npy`,
`<stem>.scale_index.npy` (int32, the exact tensors `compress` coded: z_symbols =
round(z - medians) of EntropyBottleneck.compress, 1xNx(H/64)x(W/64); y_symbols =
round(y - means) (mbt2018-mean) or round(y) (bmshj2018-hyperprior) of
GaussianConditional.compress with means/scales from the decoded z_hat, 1xMx(H/16)x(W/16);
scale_index = GaussianConditional.build_indexes of those scales). The counts of symbols
outside their CDF's range (coded by CompressAI's bypass escape) are in the results.

Example:
  PYTHONPATH=models/training ~/.cache/icm-venv/bin/python -m icm_training.compressai_kodak \\
      ~/.cache/icm/compressai/mbt2018-mean-small.pth.tar --arch mbt2018-mean \\
      -o ~/.cache/icm/compressai/mbt2018-mean-small.kodak.json \\
      --recon ~/.cache/icm/compressai/mbt2018-mean-small --latents ~/.cache/icm/compressai/mbt2018-mean-small
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import SHARED
from .compressai_seed import ARCHS, model_class

DEFAULT_KODAK = str(SHARED / "data" / "kodak")


def load_state_dict(path: str) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = obj["state_dict"] if isinstance(obj, dict) and "state_dict" in obj else obj
    if not isinstance(sd, dict) or "g_a.0.weight" not in {k.removeprefix("module.") for k in sd}:
        raise SystemExit(f"{path}: no CompressAI state_dict (g_a.0.weight missing)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_model(path: str, arch: str, force_update: bool = False):
    sd = load_state_dict(path)
    n = sd["g_a.0.weight"].size(0)
    m = sd["g_a.6.weight"].size(0)
    net = model_class(arch)(n, m)
    net.load_state_dict(sd)  # CompressionModel's: resizes the CDF buffers to the stored ones
    net.eval()
    had_cdfs = all(
        mod._quantized_cdf.numel() > 0 for mod in (net.entropy_bottleneck, net.gaussian_conditional)
    )
    with torch.no_grad():
        updated = net.update(force=force_update)
    return net, {"N": n, "M": m, "stored_cdfs": had_cdfs, "updated": bool(updated)}


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def to_input(rgb: np.ndarray, multiple: int = 64):
    """1x3xHxW float32 in [0,1], padded to `multiple` by edge replication (bottom/right)."""
    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().div(255.0)
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (ph, pw)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


class Capture:
    """Records the inputs of the two entropy models' `compress` (instance attributes shadow
    the class methods; the entropy models' own code runs unchanged)."""

    def __init__(self, net):
        self.net, self.seen = net, {}
        eb, gc = net.entropy_bottleneck, net.gaussian_conditional
        eb_compress, gc_compress = eb.compress, gc.compress

        def eb_hook(x):
            self.seen["z"] = x
            return eb_compress(x)

        def gc_hook(inputs, indexes, means=None):
            self.seen["y"], self.seen["indexes"], self.seen["means"] = inputs, indexes, means
            return gc_compress(inputs, indexes, means)

        eb.compress, gc.compress = eb_hook, gc_hook

    def close(self):
        for mod in (self.net.entropy_bottleneck, self.net.gaussian_conditional):
            del mod.compress

    def symbols(self):
        eb, gc = self.net.entropy_bottleneck, self.net.gaussian_conditional
        z = self.seen["z"]
        medians = eb._extend_ndims(eb._get_medians().detach(), z.dim() - 2)
        medians = medians.expand(z.size(0), *([-1] * (z.dim() - 1)))
        z_symbols = eb.quantize(z, "symbols", medians)
        z_index = eb._build_indexes(z.size())
        y_symbols = gc.quantize(self.seen["y"], "symbols", self.seen["means"])
        return {
            "z_symbols": z_symbols.to(torch.int32).numpy(),
            "y_symbols": y_symbols.to(torch.int32).numpy(),
            "scale_index": self.seen["indexes"].to(torch.int32).numpy(),
            "z_escapes": escapes(eb, z_symbols, z_index),
            "y_escapes": escapes(gc, y_symbols, self.seen["indexes"]),
        }


def escapes(mod, symbols: torch.Tensor, indexes: torch.Tensor) -> int:
    """Symbols outside their CDF's range, which CompressAI's coder codes by its escape."""
    idx = indexes.long()
    v = symbols.long() - mod._offset.long()[idx]
    return int(((v < 0) | (v >= (mod._cdf_length.long()[idx] - 2))).sum())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--arch", required=True, choices=ARCHS)
    ap.add_argument("--images", default=DEFAULT_KODAK, help="folder of PNGs (default Kodak)")
    ap.add_argument("-o", "--out", required=True, help="RESULTS.json")
    ap.add_argument("--recon", help="folder for the reconstructions (PNG)")
    ap.add_argument("--latents", help="folder for the coded symbols (.npy)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first LIMIT pictures")
    ap.add_argument("--force-update", action="store_true",
                    help="recompute the CDFs (net.update(force=True)) instead of the stored ones")
    ap.add_argument("--forward", action="store_true",
                    help="also run the eval-mode forward: its likelihood bpp and how far its "
                         "x_hat is from decompress's (same rounding)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    net, info = load_model(args.checkpoint, args.arch, args.force_update)
    print(f"{args.checkpoint}: {args.arch} N={info['N']} M={info['M']} stored CDFs {info['stored_cdfs']}, "
          f"updated {info['updated']} ({time.perf_counter() - t0:.1f} s)", flush=True)
    paths = sorted(Path(args.images).glob("*.png"))
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        raise SystemExit(f"no PNG in {args.images}")
    for d in (args.recon, args.latents):
        if d:
            Path(d).mkdir(parents=True, exist_ok=True)

    rows = []
    for p in paths:
        rgb = read_png(p)
        h, w = rgb.shape[:2]
        x, pad = to_input(rgb)
        cap = Capture(net) if args.latents else None
        with torch.inference_mode():
            t = time.perf_counter()
            out = net.compress(x)
            enc = time.perf_counter() - t
            t = time.perf_counter()
            rec = net.decompress(out["strings"], out["shape"])
            dec = time.perf_counter() - t
        nbytes = sum(len(s) for group in out["strings"] for s in group)
        x_hat = rec["x_hat"]
        img = (x_hat.clamp(0, 1)[0, :, :h, :w] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        row = {
            "name": p.name, "width": w, "height": h, "bytes": nbytes,
            "bytes_y": sum(len(s) for s in out["strings"][0]),
            "bytes_z": sum(len(s) for s in out["strings"][1]),
            "bpp": nbytes * 8 / (h * w), "psnr": psnr(rgb, img),
            "encode_s": enc, "decode_s": dec,
        }
        if pad != (0, 0):
            row["padded"] = list(pad)
        if cap is not None:
            sym = cap.symbols()
            cap.close()
            for k in ("z_symbols", "y_symbols", "scale_index"):
                np.save(Path(args.latents) / f"{p.stem}.{k}.npy", sym[k])
            row["z_escapes"], row["y_escapes"] = sym["z_escapes"], sym["y_escapes"]
        if args.forward:
            with torch.inference_mode():
                fw = net(x)
            row["bpp_forward"] = float(
                sum(-torch.log2(lk).sum() for lk in fw["likelihoods"].values()) / (h * w))
            row["forward_max_abs_diff"] = float((fw["x_hat"].clamp(0, 1) - x_hat).abs().max())
        if args.recon:
            Image.fromarray(img).save(Path(args.recon) / p.name)
        rows.append(row)
        print(f"{p.name} {w}x{h}: {nbytes} B {row['bpp']:.4f} bpp {row['psnr']:.3f} dB "
              f"enc {enc:.2f} s dec {dec:.2f} s"
              + (f" escapes z {row['z_escapes']} y {row['y_escapes']}" if cap is not None else "")
              + (f" fwd bpp {row['bpp_forward']:.4f} |dx| {row['forward_max_abs_diff']:.2e}" if args.forward else ""),
              flush=True)

    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and k not in ("width", "height")]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    result = {
        "checkpoint": str(args.checkpoint), "arch": args.arch, **info,
        "images": str(args.images), "count": len(rows), "threads": args.threads,
        "compressai": __import__("compressai").__version__, "torch": torch.__version__,
        "entropy_coder": net.entropy_bottleneck.entropy_coder.name,
        "mean": mean, "per_image": rows, "wall_s": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"mean over {len(rows)}: {mean['bpp']:.4f} bpp {mean['psnr']:.3f} dB enc {mean['encode_s']:.2f} s "
          f"dec {mean['decode_s']:.2f} s; wall {result['wall_s']:.1f} s -> {args.out}", flush=True)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
