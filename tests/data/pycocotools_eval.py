"""Reference COCO box evaluation for tests/it/task_py.rs: pycocotools' COCOeval.

Usage: python pycocotools_eval.py ANNOTATIONS.json DETECTIONS.json [IMAGE_IDS.json]
Prints one line: "map <stats[0]> map50 <stats[1]>". With IMAGE_IDS, params.imgIds is set to
that list (as `icm task-eval --limit` restricts the images).
"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dets = json.load(open(sys.argv[2]))
    dt = gt.loadRes(dets) if dets else COCO()
    ev = COCOeval(gt, dt, "bbox")
    if len(sys.argv) > 3:
        ev.params.imgIds = sorted(json.load(open(sys.argv[3])))
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
print(f"map {float(ev.stats[0])!r} map50 {float(ev.stats[1])!r}")
