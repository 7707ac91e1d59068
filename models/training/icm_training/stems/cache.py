"""The training caches of the stems: numpy .npy memmaps in one folder, written picture by
picture (CacheWriter) and read back for training.

Two layouts:
- crop caches (the classifiers; icm_training.dct.build_cache, icm_training.latent.build_cache):
  per crop the teacher's cut tensor `crop_feat`, its logits `crop_logits` and the picture
  `crop_image`; per sample (a crop as the stem sees it, coded) the stem input (`dct` or
  `latents`), `sample_crop` and `sample_q`; meta.json when finished, with `val_images` (the
  pictures held out) and `samples`;
- letterbox caches (the detector; icm_training.latent.build_det_cache): per letterboxed
  picture the teacher's outputs `dark3`, `dark4`, `dark5` and the stem input `x` per
  quality; progress.json only.
A resumable cache records in progress.json its settings and the pictures done (written
after the arrays are flushed); a run with other settings is refused.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from .classifier import DEFAULT_TEACHER
from .images import list_images

VAL_EVERY = 25  # every 25th picture is held out (the default of the crop caches' --val-every)


def write_json(path: str, value) -> None:
    """Writes `value` to `path` atomically."""
    with open(path + ".tmp", "w") as fh:
        json.dump(value, fh, indent=1)
    os.replace(path + ".tmp", path)


class CacheWriter:
    """The arrays of a cache being built in `out`: {name: (dtype, shape)}. With `settings`
    (a dict) the cache is resumable: `done` pictures of an earlier run with the same
    settings are kept (the arrays opened r+), `progress(done)` records more."""

    def __init__(self, out: str, arrays: dict, settings: dict | None = None):
        os.makedirs(out, exist_ok=True)
        self.out, self.settings, self.done = out, settings, 0
        prog = os.path.join(out, "progress.json")
        if settings is not None and os.path.isfile(prog):
            with open(prog) as fh:
                old = json.load(fh)
            if any(old.get(k) != v for k, v in settings.items()):
                raise SystemExit(f"{prog}: made with other settings ({old}); use another --out")
            self.done = old["done"]
            print(f"resuming after {self.done} pictures")
        mode = "r+" if self.done else "w+"
        self.arrays = {
            name: np.lib.format.open_memmap(os.path.join(out, name + ".npy"), mode, dtype, shape)
            for name, (dtype, shape) in arrays.items()
        }

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def flush(self) -> None:
        for a in self.arrays.values():
            a.flush()

    def progress(self, done: int) -> None:
        """Flushes the arrays, then records `done` pictures."""
        self.flush()
        write_json(os.path.join(self.out, "progress.json"), {**self.settings, "done": done})

    def finish(self, meta: dict) -> None:
        """Flushes the arrays, then writes meta.json (the cache is finished)."""
        self.flush()
        write_json(os.path.join(self.out, "meta.json"), meta)


def crop_cache_parser(doc: str, out: str) -> argparse.ArgumentParser:
    """The options of every crop-cache builder."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--src", default="../shared/data/train")
    ap.add_argument("--out", default=out)
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--crops", type=int, default=4, help="crops per picture")
    ap.add_argument("--limit", type=int, help="first N pictures only (smoke tests)")
    ap.add_argument("--val-every", type=int, default=VAL_EVERY)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def finished(out: str) -> bool:
    """Whether the crop cache `out` is finished (says so)."""
    if os.path.isfile(os.path.join(out, "meta.json")):
        print(f"{out}: cache exists")
        return True
    return False


def pictures(args) -> list[str]:
    """The first --limit pictures of --src."""
    files = list_images(args.src)[: args.limit]
    if not files:
        raise SystemExit(f"no pictures under {args.src}")
    return files


def crop_cache_meta(args, files: list[str], **more) -> dict:
    """meta.json of a crop cache of `files` made with the options of crop_cache_parser."""
    return {"images": [os.path.relpath(f, args.src) for f in files],
            "val_images": list(range(0, len(files), args.val_every)), "crops": args.crops,
            "seed": args.seed, "teacher": os.path.basename(args.teacher), **more}


def read_crop_cache(path: str, input_key: str, partial: bool = False) -> dict:
    """The arrays of a finished crop cache (memmaps) and its split, `train_idx` and
    `val_idx` (samples); with `partial`, of the pictures a cache still being built has
    finished (progress.json), with the validation split it will have."""
    meta_path = os.path.join(path, "meta.json")
    if os.path.isfile(meta_path):
        with open(meta_path) as fh:
            meta = json.load(fh)
        n = meta["samples"]
    elif partial:
        with open(os.path.join(path, "progress.json")) as fh:
            prog = json.load(fh)
        meta = {"val_images": list(range(0, prog["files"], VAL_EVERY)), "crops": prog["crops"],
                "qualities": prog["qualities"], "partial": prog["done"]}
        n = prog["done"] * prog["crops"] * len(prog["qualities"])
        print(f"{path}: partial cache, {prog['done']} of {prog['files']} pictures")
    else:
        raise SystemExit(f"{meta_path}: cache not finished (--partial uses what is done)")
    c = {"meta": meta}
    for name in ("crop_feat", "crop_logits", "crop_image", input_key, "sample_crop", "sample_q"):
        c[name] = np.load(os.path.join(path, name + ".npy"), mmap_mode="r")
    img_of_sample = np.asarray(c["crop_image"])[np.asarray(c["sample_crop"][:n])]
    val = np.isin(img_of_sample, meta["val_images"])
    c["train_idx"] = np.flatnonzero(~val)
    c["val_idx"] = np.flatnonzero(val)
    return c


def crop_batch(cache, idx, input_key: str, channels=None):
    """Samples `idx` of a crop cache: stem inputs (the `channels` of `input_key`, default
    all), the teacher's cut tensors and logits (float32 tensors), and the qualities."""
    idx = np.sort(idx)
    x = cache[input_key][idx]
    x = np.asarray(x if channels is None else x[:, channels], dtype=np.float32)
    crops = np.asarray(cache["sample_crop"][idx])
    f = torch.from_numpy(np.asarray(cache["crop_feat"][crops], dtype=np.float32))
    lg = torch.from_numpy(np.asarray(cache["crop_logits"][crops], dtype=np.float32))
    return torch.from_numpy(x), f, lg, np.asarray(cache["sample_q"][idx])


def input_stats(cache, rng, key: str, n: int, chunk: int, std_floor: float):
    """Per-channel mean and std (plus `std_floor`) of the stem inputs `cache[key]`, and
    per-channel variance of the teacher's cut tensor, over n training samples of a crop
    cache read `chunk` at a time."""
    idx = np.sort(rng.choice(cache["train_idx"], min(n, len(cache["train_idx"])), replace=False))
    s1, s2 = np.zeros(cache[key].shape[1]), np.zeros(cache[key].shape[1])
    f1, f2 = np.zeros(cache["crop_feat"].shape[1]), np.zeros(cache["crop_feat"].shape[1])
    for k in range(0, len(idx), chunk):
        b = idx[k : k + chunk]
        x = np.asarray(cache[key][b], dtype=np.float64)
        s1 += x.mean(axis=(0, 2, 3)) * len(b)
        s2 += (x ** 2).mean(axis=(0, 2, 3)) * len(b)
        f = np.asarray(cache["crop_feat"][np.asarray(cache["sample_crop"][b])], dtype=np.float64)
        f1 += f.mean(axis=(0, 2, 3)) * len(b)
        f2 += (f ** 2).mean(axis=(0, 2, 3)) * len(b)
    mean = s1 / len(idx)
    std = np.sqrt(np.maximum(s2 / len(idx) - mean ** 2, 0)) + std_floor
    fvar = np.maximum(f2 / len(idx) - (f1 / len(idx)) ** 2, 1e-4)
    return mean, std, fvar


def read_letterbox_cache(path: str, names: tuple, partial: bool = False) -> dict:
    """The arrays `x` and `names` (the teacher's outputs) of a letterbox cache (memmaps)
    and its split by picture, `train_idx` and `val_idx`; unfinished only with `partial`."""
    with open(os.path.join(path, "progress.json")) as fh:
        prog = json.load(fh)
    g = prog["geometries"]
    m = prog["done"] * g
    if prog["done"] < prog["pictures"] and not partial:
        raise SystemExit(f"{path}: {prog['done']} of {prog['pictures']} pictures done (--partial?)")
    arrays = {k: np.load(os.path.join(path, f"{k}.npy"), mmap_mode="r") for k in ("x", *names)}
    pic = np.arange(m) // g
    idx = np.arange(m)
    return {**arrays, "train_idx": idx[pic % VAL_EVERY != 0], "val_idx": idx[pic % VAL_EVERY == 0]}
