"""CompressAI's mean-scale hyperprior (mbt2018-mean, N=128, M=192) timed on a folder of
PNGs, for benches/compare.sh: compress (RGB tensor -> strings) and decompress (strings ->
reconstruction, clamped and converted to 8-bit RGB, as icm's decode ends), per image
the median of --repeat runs after one warm-up, in milliseconds, as JSON on stdout.

The weights are random (torch.manual_seed(0)): the network's speed does not depend on
their values; the entropy tables come from `update()`. Run on the same machine, in the
same run as `icm bench`.

    python benches/compressai_speed.py --dataset DIR [--threads 2] [--repeat 5] [--limit N]
        [--save-checkpoint PATH]

--save-checkpoint writes the timed model's state dict, so that `icm model import` runs the
very same weights (the equal-weights row of benches/compare.sh).
"""
import argparse
import glob
import json
import os
import statistics
import time

import numpy as np
import torch
from compressai.zoo import mbt2018_mean
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--quality", type=int, default=3, help="zoo quality (N=128, M=192 for 1..4)")
    ap.add_argument("--save-checkpoint", help="write the model's state dict here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = mbt2018_mean(quality=a.quality, pretrained=False).eval()
    net.update(force=True)
    if a.save_checkpoint:
        torch.save(net.state_dict(), a.save_checkpoint)
    files = sorted(glob.glob(os.path.join(a.dataset, "*.png")))[: a.limit]
    if not files:
        raise SystemExit(f"{a.dataset}: no PNG images")
    rows = []
    with torch.inference_mode():
        for f in files:
            rgb = np.array(Image.open(f).convert("RGB"))
            x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)
            h, w = x.shape[2:]
            # CompressAI's models need sizes divisible by 64: pad as its eval_model does.
            ph, pw = (64 - h % 64) % 64, (64 - w % 64) % 64
            xp = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="constant", value=0)

            def compress():
                return net.compress(xp)

            def decompress(out):
                r = net.decompress(out["strings"], out["shape"])["x_hat"][:, :, :h, :w]
                return r.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

            out = compress()
            decompress(out)
            ct, dt = [], []
            for _ in range(a.repeat):
                t = time.perf_counter()
                out = compress()
                ct.append(time.perf_counter() - t)
                t = time.perf_counter()
                decompress(out)
                dt.append(time.perf_counter() - t)
            nbytes = sum(len(s[0]) for s in out["strings"])
            rows.append({
                "image": os.path.basename(f),
                "pixels": h * w,
                "bytes": nbytes,
                "compress_ms": 1e3 * statistics.median(ct),
                "decompress_ms": 1e3 * statistics.median(dt),
            })
    print(json.dumps({
        "tool": f"compressai {__import__('compressai').__version__}, torch {torch.__version__}",
        "model": f"mbt2018-mean quality {a.quality} (N=128, M=192), random weights",
        "threads": a.threads,
        "repeat": a.repeat,
        "median_ms": {
            "compress": statistics.median(r["compress_ms"] for r in rows),
            "decompress": statistics.median(r["decompress_ms"] for r in rows),
        },
        "images": rows,
    }, indent=1))


if __name__ == "__main__":
    main()
