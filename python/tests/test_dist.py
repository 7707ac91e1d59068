"""``python -m icm.dist task-eval`` (issue 19) on a local Ray runtime with 2 workers against
the single-process ``icm task-eval``: the same scores and detections on 8 COCO pictures at
2 rate points, the same after a worker is killed mid-run, and a second run served from the
record cache. ``icm.dist anchor`` and ``icm.dist eval`` against ``icm anchor`` and
``icm eval`` on Kodak pictures (the same figures, times aside; a rerun from the cache), and
``icm.RdEvaluation`` at ``--effort 1``. Needs ../shared (COCO subset, YOLOX-Nano, Kodak),
ONNX Runtime in the venv and Ray.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from helpers import REPO, cannot_run, run_cli

COCO = REPO.parent / "shared" / "data" / "coco"
ARGS = ["--task", "detection", "--dataset", str(COCO), "--qualities", "1,3", "--limit", "8"]
RECORDS = 16  # 8 pictures x 2 rate points


def _needs():
    if not (COCO / "annotations").is_dir():
        cannot_run(f"no COCO subset at {COCO} (../shared)")
    try:
        import ray  # noqa: F401
    except ImportError:
        cannot_run("ray is not installed: run scripts/setup_test_env.sh")


def _timing(name: str) -> bool:
    return name.endswith("_s") or name.endswith("_time")


def _scores(path: Path) -> Dict:
    """A results file without its times (wall time and the per-picture time columns)."""
    doc = json.loads(path.read_text())
    doc.pop("total_time")
    doc["results"] = {k: v for k, v in doc["results"].items() if not _timing(k)}
    return doc


def _dist(out: Path, cache: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, "-m", "icm.dist", "task-eval", *ARGS, "--workers", "2",
           "--cache-dir", str(cache), "-o", str(out / "r.json"), "--csv", str(out / "r.csv"),
           "--save-detections", str(out / "dets"), *extra]
    out.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, f"icm.dist failed ({p.returncode}): {stderr[-3000:]}"
    return stdout


def _cached(stdout: str) -> int:
    line = [x for x in stdout.splitlines() if x.startswith("records ")][-1]
    # "records N, M from the cache"
    n, m = line.split()[1].rstrip(","), line.split()[2]
    assert int(n) == RECORDS, line
    return int(m)


def _same_as_cli(ref: Path, out: Path) -> None:
    assert _scores(out / "r.json") == _scores(ref / "r.json")
    # Detections in COCO results format, byte for byte: the same boxes in the same order.
    for label in ("icm-psnr-q1", "icm-psnr-q3"):
        assert (out / f"dets-{label}.json").read_bytes() == (ref / f"dets-{label}.json").read_bytes()
    head = lambda p: p.read_text().splitlines()[0]  # noqa: E731
    assert head(out / "r.csv") == head(ref / "r.csv")


@pytest.fixture(scope="module")
def reference(cli, tmp_path_factory) -> Path:
    """``icm task-eval`` in one process."""
    _needs()
    out = tmp_path_factory.mktemp("cli")
    run_cli(cli, "task-eval", *ARGS, "-o", out / "r.json", "--csv", out / "r.csv",
            "--save-detections", out / "dets")
    doc = json.loads((out / "r.json").read_text())
    assert doc["images"] == 8 and len(doc["rate_points"]) == 2
    assert all(0.05 < m < 0.9 for m in doc["results"]["map"]), doc["results"]
    return out


@pytest.fixture(scope="module")
def first_run(reference, tmp_path_factory):
    """A distributed run with an empty cache: (its folder, its cache, its stdout)."""
    root = tmp_path_factory.mktemp("dist")
    stdout = _dist(root / "out", root / "cache")
    return root / "out", root / "cache", stdout


def test_dist_gives_the_scores_of_the_single_process_command(reference, first_run):
    out, cache, stdout = first_run
    _same_as_cli(reference, out)
    assert _cached(stdout) == 0
    assert len(list((cache / "records").glob("*/*.json"))) == RECORDS


def test_second_run_is_served_from_the_cache(reference, first_run, tmp_path):
    _, cache, _ = first_run
    before = sorted(p.name for p in (cache / "records").glob("*/*.json"))
    stdout = _dist(tmp_path / "again", cache)
    assert _cached(stdout) == RECORDS
    assert sorted(p.name for p in (cache / "records").glob("*/*.json")) == before
    _same_as_cli(reference, tmp_path / "again")


def _descendants(root: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _running_task(root: int) -> List[int]:
    """This run's Ray workers busy with a task (process title ray::_evaluate)."""
    busy = []
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::_evaluate"):
                    busy.append(pid)
        except OSError:
            continue
    return busy


def test_killing_a_worker_mid_run_gives_the_same_results(reference, tmp_path):
    _needs()
    cache = tmp_path / "cache"
    p = _dist(tmp_path / "out", cache, wait=False)
    killed = None
    deadline = time.monotonic() + 240
    try:
        while killed is None and p.poll() is None and time.monotonic() < deadline:
            done = len(list((cache / "records").glob("*/*.json"))) if cache.exists() else 0
            busy = _running_task(p.pid) if done >= 2 else []
            if busy and done < RECORDS:
                os.kill(busy[0], signal.SIGKILL)
                killed = (busy[0], done)
            else:
                time.sleep(0.05)
        stdout, stderr = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert killed is not None, "no worker was busy with a task while the run lasted"
    assert p.returncode == 0, f"icm.dist failed after a worker was killed: {stderr[-3000:]}"
    assert _cached(stdout) == 0
    assert len(list((cache / "records").glob("*/*.json"))) == RECORDS
    _same_as_cli(reference, tmp_path / "out")


def test_merge_refuses_missing_and_duplicate_records(first_run):
    import icm

    _, cache, _ = first_run
    ev = icm.TaskEvaluation("detection", str(COCO), qualities="1,3", limit=8,
                            cache_dir=str(cache.resolve().parent / "cache"))
    records = [ev.evaluate(i, k) for i in range(ev.pictures) for k in range(2)]
    assert all(cached for _, cached in records)
    blobs = [r for r, _ in records]
    assert "map" in json.loads(ev.finish(blobs, 1.0)["json"])["results"]
    with pytest.raises(icm.TaskError, match="missing"):
        ev.finish(blobs[:-1], 1.0)
    with pytest.raises(icm.TaskError, match="twice"):
        ev.finish(blobs + blobs[:1], 1.0)
    with pytest.raises(icm.TaskError, match="does not read"):
        ev.finish(blobs[:-1] + [b"{"], 1.0)
    with pytest.raises(icm.UsageError, match="qualities"):
        icm.TaskEvaluation("detection", str(COCO), qualities="0..9")


KODAK = REPO.parent / "shared" / "data" / "kodak"
ANCHOR_ARGS = ["--codec", "hevc", "--qps", "27,37", "--limit", "3", "--dataset", str(KODAK)]


def _rd(path: Path) -> Dict:
    """A results file of ``icm anchor`` or ``icm eval`` without its times."""
    doc = json.loads(path.read_text())
    doc["results"] = {k: v for k, v in doc["results"].items() if not _timing(k)}
    for row in doc["per_image"]:
        row.pop("encoding_time")
        row.pop("decoding_time")
    return doc


def test_dist_anchor_gives_the_figures_of_icm_anchor(cli, tmp_path):
    """``icm.dist anchor`` codes in the workers (empty cache) and gives ``icm anchor``'s
    figures; a second run reads every coded picture from the cache."""
    _needs()
    if not KODAK.is_dir():
        cannot_run(f"no Kodak pictures at {KODAK} (../shared)")
    run_cli(cli, "anchor", *ANCHOR_ARGS, "--no-cache", "-o", tmp_path / "cli.json")
    cmd = [sys.executable, "-m", "icm.dist", "anchor", *ANCHOR_ARGS, "--workers", "2",
           "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "dist.json")]
    for run, cached in (("first", 0), ("second", 6)):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{run} run: {r.stderr[-3000:]}"
        assert f"records 6, {cached} from the cache" in r.stdout, r.stdout
        assert _rd(tmp_path / "dist.json") == _rd(tmp_path / "cli.json"), run


EVAL_ARGS = ["--dataset", str(KODAK), "--qualities", "1,2", "--limit", "3"]


def _eval_dist(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "icm.dist", "eval", *EVAL_ARGS, "--workers", "2",
           "--cache-dir", str(tmp / "cache"), "-o", str(tmp / "dist.json"),
           "--csv", str(tmp / "dist.csv"), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "ICM_MODEL_DIR": str(REPO / "models")})
    assert r.returncode == 0, f"icm.dist eval: {r.stderr[-3000:]}"
    return r


def _csv_figures(path: Path) -> List[List[str]]:
    """A CSV results file without its time columns."""
    rows = [line.split(",") for line in path.read_text().splitlines()]
    keep = [k for k, name in enumerate(rows[0]) if not _timing(name)]
    return [[row[k] for k in keep] for row in rows]


def test_dist_eval_gives_the_figures_of_icm_eval(cli, tmp_path):
    """``icm.dist eval`` on 3 Kodak pictures x 2 zoo qualities gives ``icm eval``'s results
    file (every figure, model, path and description; times aside); a second run reads every
    row from the record cache."""
    _needs()
    if not KODAK.is_dir():
        cannot_run(f"no Kodak pictures at {KODAK} (../shared)")
    run_cli(cli, "eval", *EVAL_ARGS, "-o", tmp_path / "cli.json", "--csv", tmp_path / "cli.csv",
            env={**os.environ, "ICM_MODEL_DIR": str(REPO / "models")})
    for run, cached in (("first", 0), ("second", 6)):
        r = _eval_dist(tmp_path)
        assert f"records 6, {cached} from the cache" in r.stdout, r.stdout
        assert "icm-psnr-q2" in r.stdout and "PSNR-RGB" in r.stdout, r.stdout
        assert _rd(tmp_path / "dist.json") == _rd(tmp_path / "cli.json"), run
        assert _csv_figures(tmp_path / "dist.csv") == _csv_figures(tmp_path / "cli.csv"), run
    assert len(list((tmp_path / "cache" / "records").glob("*/*.json"))) == 6


def _write_png(path: Path, img) -> None:
    """An 8-bit RGB PNG (no filter), without an imaging library."""
    import struct
    import zlib

    h, w, _ = img.shape
    raw = b"".join(b"\0" + img[y].tobytes() for y in range(h))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_rd_evaluation_with_effort(cli, tmp_path):
    """``--effort 1`` (the encoder's search) on 1 small picture at 1 quality, in process:
    the figures of ``icm eval --effort 1``, the effort in the rate point's settings."""
    import icm

    from helpers import picture

    _write_png(tmp_path / "p.png", picture(256, 192, seed=3))
    env = {**os.environ, "ICM_MODEL_DIR": str(REPO / "models")}
    run_cli(cli, "eval", "--dataset", tmp_path, "--qualities", "1", "--effort", "1",
            "-o", tmp_path / "cli.json", env=env)
    ev = icm.RdEvaluation(str(tmp_path), qualities="1", effort=1, use_cache=False,
                          model_dir=str(REPO / "models"))
    row, cached, _ = ev.evaluate(0, 0)
    assert not cached
    (tmp_path / "py.json").write_text(ev.finish([row])["json"])
    doc = _rd(tmp_path / "py.json")
    assert doc == _rd(tmp_path / "cli.json")
    assert doc["rate_points"][0]["settings"] == "effort 1"
    with pytest.raises(icm.UsageError, match="effort"):
        icm.RdEvaluation(str(tmp_path), qualities="1", effort=7)


def test_task_eval_passes_roi_and_steps_to_the_evaluation():
    from icm import dist

    a = dist.parse_args(
        ["task-eval", "--task", "detection", "--dataset", "d", "--qualities", "1@2,1..3",
         "--roi", "detection", "--roi-background", "4"]
    )
    spec = dist._spec(a)
    assert (spec["qualities"], spec["roi"], spec["roi_background"]) == ("1@2,1..3", "detection", 4.0)
