"""Evaluation at dataset scale on a Ray cluster: ``python -m icm.dist task-eval|anchor|eval``.

The arguments and the results files are those of ``icm task-eval``, ``icm anchor`` and
``icm eval``; a few
more say where it runs: ``--address`` (a Ray cluster: ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``; without
it a local Ray runtime is started, ``--workers`` processes on this machine), ``--cache-dir``
(the record and anchor cache, a folder every worker sees) and ``--retries``.

Each picture at each rate point is one Ray task. It calls the Rust library through
:class:`icm.TaskEvaluation` (built once per worker process): code the picture, decode it,
run the task network, and hand back a record (the picture's detections, counts or confusion
matrices, bytes and times). The driver merges every record with the function the
single-process ``icm task-eval`` uses, so COCO mAP is computed once on all detections and
the merged results equal the command's (times aside).

Records are cached under the SHA-256 of everything that decides them (picture bytes, model
or encoder settings, task network files, icm version) in ``CACHE_DIR/records``, written by
the worker as soon as its task is done: a rerun is served from the cache, and a run that
was interrupted resumes where it stopped. A worker killed mid-task costs that task only:
Ray runs it again (``--retries``); no record is lost or counted twice (the merge refuses a
missing or duplicate record).

``anchor`` is ``icm anchor`` the same way (:class:`icm.AnchorEvaluation`): each picture at
each rate parameter coded by ffmpeg, or read from the anchor cache (``--cache-dir``), and
measured; the rows make the command's results file.

``eval`` is ``icm eval`` the same way (:class:`icm.RdEvaluation`): each picture at each
model encoded (``--effort``, ``--lambda``), decoded and measured (bpp, PSNR-RGB, MS-SSIM),
or its row read from the record cache (keyed by the picture's bytes, the model's SHA-256,
the encoder options and the icm version); the rows make the command's results file.

Nothing here computes anything of the evaluation; this module is orchestration only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["main", "run_task_eval", "run_anchor", "run_eval", "parse_args"]

_HELP = """\
Rate-task evaluation of a dataset on a Ray cluster, one Ray task per picture and rate point:
the arguments and results files (JSON, CSV, --save-detections) of `icm task-eval` (see
`icm task-eval --help` for tasks, codecs, input domains and columns), with the same scores.

Where it runs:
  without --address   a local Ray runtime with --workers worker processes (default: the
                      CPUs of this machine);
  --address auto      the Ray cluster this machine is part of (`ray start --head` on one
                      host, `ray start --address HEAD:6379` on the others);
  --address ray://HOST:10001   a remote cluster through Ray Client.
Every worker needs this package (pip install ./python), ONNX Runtime (the onnxruntime 1.32
wheel in the same Python, or ORT_DYLIB_PATH), the dataset at the same path, the task networks ($ICM_TASK_MODELS or
../shared) and, for conventional codecs, ffmpeg. ICM_TASK_MODELS, ICM_TASK_CACHE,
ICM_MODEL_DIR, ICM_CACHE_DIR, ICM_VENV and ORT_DYLIB_PATH, when set here, are passed on
to the workers.

The cache (--cache-dir, default $ICM_CACHE_DIR or ~/.cache/icm) holds the records of every
picture at every rate point (records/) and the anchors' coded pictures (anchors/). Give a
folder every worker sees (a shared filesystem) so that a rerun, or a run resumed after an
interruption, evaluates only what is missing.

Exit status: 0 done, 1 an error of the evaluation, 2 a usage error, 130 interrupted (run
the same command again to resume from the cache).
"""


def _task_eval_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "task-eval",
        help="rate-task evaluation (icm task-eval) on Ray",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, help="detection, classification or segmentation")
    p.add_argument("--dataset", required=True, help="dataset folder (as icm task-eval)")
    p.add_argument(
        "--codec",
        default="icm",
        help="icm, none, vvc, hevc, av1, jpeg, jxl, webp or jpeg-ijg (default icm)",
    )
    p.add_argument(
        "--input-domain",
        default="rgb",
        help="rgb, latents (icm), dct192 or dct24 (jpeg-ijg); default rgb",
    )
    p.add_argument(
        "--qualities",
        help="rate points for --codec icm: 1..6, 1,3,5, or Q@STEP (quality Q at a global step)",
    )
    p.add_argument(
        "--roi",
        help="--codec icm with region-of-interest steps from this task's network (as icm task-eval)",
    )
    p.add_argument(
        "--roi-background",
        type=float,
        help="with --roi: the step factor of the least important cells "
        "(default 16 for classification, 3 otherwise)",
    )
    p.add_argument(
        "--model",
        dest="models",
        nargs="+",
        action="extend",
        default=[],
        help="models for --codec icm instead of --qualities (names or files)",
    )
    p.add_argument("--qps", help="rate parameters of a conventional codec or jpeg-ijg")
    p.add_argument("--ffmpeg", help="ffmpeg for conventional codecs")
    p.add_argument("--limit", type=int, help="evaluate only the first N pictures")
    p.add_argument("--task-model", help="the task network's ONNX file")
    p.add_argument("--annotations", help="COCO annotations file")
    p.add_argument("-o", "--output", help="JSON results (layout of icm eval -o)")
    p.add_argument("--csv", help="CSV results: one row per rate point")
    p.add_argument(
        "--save-detections",
        metavar="PREFIX",
        help="also write each rate point's detections to PREFIX-<label>.json",
    )
    _model_and_cache_options(p, "record")
    _ray_options(p, threads=True)


_ANCHOR_HELP = """\
Conventional-codec anchors of a folder of PNGs on a Ray cluster, one Ray task per picture
and rate parameter: the arguments and results files of `icm anchor` (see `icm anchor --help`
for codecs, ladders and settings), with the same figures (times aside).

--address, --workers and --retries as for task-eval. The anchor cache (--cache-dir, default
$ICM_CACHE_DIR/anchors or ~/.cache/icm/anchors) holds every coded picture: give a folder
every worker sees so that a rerun or a resumed run codes only what is missing. Every worker
needs this package and ffmpeg (--ffmpeg, or the imageio-ffmpeg wheel) at the same path.
"""


def _anchor_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "anchor",
        help="conventional-codec anchors (icm anchor) on Ray",
        description=_ANCHOR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--codec", default="vvc", help="vvc, hevc, av1, jpeg, jxl or webp")
    p.add_argument("--dataset", required=True, help="folder of PNG pictures")
    p.add_argument("--qps", "--levels", dest="qps", help="rate parameters (as icm anchor)")
    p.add_argument("--limit", type=int, help="code only the first N pictures")
    p.add_argument("--ffmpeg", help="ffmpeg to use")
    p.add_argument("--preset", default="medium", help="VVC/HEVC encoder preset")
    p.add_argument("--encoder-cmd", help="encoder command for video codecs (as icm anchor)")
    p.add_argument("--cache-dir", help="anchor cache seen by every worker")
    p.add_argument("--no-cache", action="store_true", help="code every picture again")
    p.add_argument("-o", "--output", help="JSON results")
    p.add_argument("--csv", help="CSV results")
    _ray_options(p, threads=False)


_EVAL_HELP = """\
Rate and distortion of the icm codec on a folder of PNGs on a Ray cluster, one Ray task per
picture and model: the arguments and results files of `icm eval` (see `icm eval --help`),
with the same figures (times aside).

--address, --workers, --threads and --retries as for task-eval. The record cache
(--cache-dir, default $ICM_CACHE_DIR or ~/.cache/icm; rows in records/) holds every
picture's row at every model, keyed by the picture's bytes, the model's SHA-256, the encoder
options (--effort, --lambda) and the icm version: give a folder every worker sees so that a
rerun or a resumed run codes only what is missing. Models are looked up in --model-dir
($ICM_MODEL_DIR), then in the zoo built into the package.
"""


def _eval_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "eval",
        help="rate-distortion evaluation of icm (icm eval) on Ray",
        description=_EVAL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, help="folder of PNG pictures")
    p.add_argument(
        "--qualities", help="zoo qualities: 1..6 or 1,3,5 (default 1..6 when no --model)"
    )
    p.add_argument(
        "--model",
        dest="models",
        nargs="+",
        action="extend",
        default=[],
        help="model names (looked up in the model directory, then the zoo) or files",
    )
    p.add_argument("-o", "--output", help="JSON results (as icm eval -o)")
    p.add_argument("--csv", help="CSV results (as icm eval --csv)")
    p.add_argument("--limit", type=int, help="evaluate only the first N pictures")
    p.add_argument(
        "--effort", type=int, default=0, help="encoder effort 0-3 (as icm eval; default 0)"
    )
    p.add_argument(
        "--lambda",
        dest="lambda_",
        metavar="LAMBDA",
        type=float,
        help="rate-distortion weight of the encoder's search (default: the model's)",
    )
    _model_and_cache_options(p, "row")
    _ray_options(p, threads=True)


def _model_and_cache_options(p: argparse.ArgumentParser, unit: str) -> None:
    """--model-dir, --cache-dir and --no-cache of the commands that code with icm models."""
    p.add_argument("--model-dir", help="model directory (default: $ICM_MODEL_DIR, the zoo)")
    p.add_argument(
        "--cache-dir",
        help="cache root seen by every worker (default $ICM_CACHE_DIR or ~/.cache/icm)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help=f"evaluate every {unit}, neither reading nor writing the record cache",
    )


def _ray_options(p: argparse.ArgumentParser, threads: bool) -> None:
    if threads:
        p.add_argument(
            "--threads",
            type=int,
            default=1,
            help="codec threads per worker (default 1: one worker per CPU)",
        )
    p.add_argument(
        "--address",
        help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: a local runtime)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="worker processes of the local runtime (default: its CPUs); ignored with --address",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="times a task is run again when its worker dies (default 3)",
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments of ``python -m icm.dist``."""
    parser = argparse.ArgumentParser(
        prog="python -m icm.dist",
        description="Evaluations of icm at dataset scale on a Ray cluster.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _task_eval_parser(sub)
    _anchor_parser(sub)
    _eval_parser(sub)
    return parser.parse_args(argv)


def _spec(a: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of :class:`icm.TaskEvaluation` (the same in every process)."""
    cache_dir = os.path.abspath(a.cache_dir) if a.cache_dir else None
    path = lambda p: os.path.abspath(p) if p else None  # noqa: E731
    return {
        "task": a.task,
        "dataset": a.dataset,
        "codec": a.codec,
        "input_domain": a.input_domain,
        "qualities": a.qualities,
        "models": list(a.models),
        "qps": a.qps,
        "ffmpeg": path(a.ffmpeg),
        "limit": a.limit,
        "task_model": path(a.task_model),
        "annotations": path(a.annotations),
        "model_dir": path(a.model_dir),
        "cache_dir": cache_dir,
        "use_cache": not a.no_cache,
        "roi": a.roi,
        "roi_background": a.roi_background,
    }


def _anchor_spec(a: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of :class:`icm.AnchorEvaluation`."""
    path = lambda p: os.path.abspath(p) if p else None  # noqa: E731
    return {
        "codec": a.codec,
        "dataset": a.dataset,
        "qps": a.qps,
        "limit": a.limit,
        "ffmpeg": path(a.ffmpeg),
        "preset": a.preset,
        "encoder_cmd": a.encoder_cmd,
        "cache_dir": path(a.cache_dir),
        "no_cache": a.no_cache,
    }


def _eval_spec(a: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of :class:`icm.RdEvaluation`."""
    path = lambda p: os.path.abspath(p) if p else None  # noqa: E731
    return {
        "dataset": os.path.abspath(a.dataset),
        "qualities": a.qualities,
        "models": list(a.models),
        "limit": a.limit,
        "effort": a.effort,
        "lambda_": a.lambda_,
        "model_dir": path(a.model_dir),
        "cache_dir": path(a.cache_dir),
        "use_cache": not a.no_cache,
    }


# The class of each kind of run.
_CLASSES = {"task-eval": "TaskEvaluation", "anchor": "AnchorEvaluation", "eval": "RdEvaluation"}

# One evaluation per worker process and set of arguments: networks and models are loaded
# by the first task a worker runs, not by each.
_JOBS: Dict[Tuple[Tuple[str, Any], ...], Any] = {}


def _use_this_onnxruntime() -> None:
    """Points ``ORT_DYLIB_PATH`` at the ``onnxruntime`` wheel of this interpreter when it is
    unset and the wheel is installed (icm otherwise looks in the project venv only)."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        capi = os.path.join(folder, "capi")
        if os.path.isdir(capi):
            libs = sorted(f for f in os.listdir(capi) if f.startswith("libonnxruntime.so"))
            if libs:
                os.environ["ORT_DYLIB_PATH"] = os.path.join(capi, libs[-1])
                return


def _job(kind: str, spec: Dict[str, Any]) -> Any:
    import icm

    _use_this_onnxruntime()

    key = (kind,) + tuple(
        sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in spec.items())
    )
    job = _JOBS.get(key)
    if job is None:
        job = _JOBS[key] = getattr(icm, _CLASSES[kind])(**spec)
    return job


def _evaluate(
    kind: str, spec: Dict[str, Any], item: int, point: int
) -> Tuple[int, int, bytes, bool, Optional[str]]:
    """The body of one Ray task: picture ``item`` at rate point ``point`` of ``kind``
    (``task-eval``, ``anchor`` or ``eval``): ``(item, point, record, cached, warning)``."""
    done = _job(kind, spec).evaluate(item, point)
    record, cached = done[0], done[1]
    warning = done[2] if len(done) > 2 else None
    return item, point, record, cached, warning


def _check_outputs(paths: Sequence[Optional[str]]) -> None:
    """Refuses, before any work, an output whose folder is missing or that is a folder."""
    import icm

    for p in paths:
        if p is None:
            continue
        folder = os.path.dirname(os.path.abspath(p))
        if os.path.isdir(p):
            raise icm.UsageError(f"{p}: is a folder, not a results file")
        if not os.path.isdir(folder):
            raise icm.UsageError(f"{p}: folder {folder} does not exist")


def _write(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` whole or not at all (temporary file, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".icm-dist-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class _Progress:
    """Pictures done (all their rate points) and throughput, with tqdm."""

    def __init__(self, pictures: int, points: int) -> None:
        from tqdm import tqdm

        batch = not sys.stderr.isatty()
        self.bar = tqdm(
            total=pictures,
            unit="picture",
            desc="icm.dist",
            file=sys.stderr,
            mininterval=float(os.environ.get("ICM_PROGRESS_SECONDS", "30")) if batch else 0.2,
            dynamic_ncols=True,
        )
        self.points = points
        self.left = [points] * pictures
        self.cached = 0
        self.records = 0

    def record(self, item: int, cached: bool) -> None:
        self.records += 1
        self.cached += int(cached)
        self.left[item] -= 1
        if self.left[item] == 0:
            self.bar.update(1)
        self.bar.set_postfix(records=self.records, cached=self.cached, refresh=False)

    def close(self) -> None:
        self.bar.close()


# The environment variables that say where icm finds its inputs, passed on to the workers.
_PASSED_ON = (
    "ICM_TASK_MODELS",
    "ICM_TASK_CACHE",
    "ICM_MODEL_DIR",
    "ICM_CACHE_DIR",
    "ICM_VENV",
    "ORT_DYLIB_PATH",
)


def _run_records(
    a: argparse.Namespace, kind: str, spec: Dict[str, Any], pictures: int, points: int
) -> Tuple[List[bytes], int, float]:
    """Runs every picture at every rate point as a Ray task: (records, cached, wall time)."""
    import ray

    env = {"RAYON_NUM_THREADS": str(getattr(a, "threads", 1))}
    # Where the workers find what the driver found (they inherit nothing on other hosts).
    env.update({k: os.environ[k] for k in _PASSED_ON if os.environ.get(k)})
    if a.address:
        ray.init(address=a.address, runtime_env={"env_vars": env}, logging_level="WARNING")
    else:
        ray.init(
            num_cpus=a.workers or os.cpu_count() or 1,
            include_dashboard=False,
            runtime_env={"env_vars": env},
            logging_level="WARNING",
        )
    try:
        task = ray.remote(num_cpus=1, max_retries=a.retries)(_evaluate)
        spec_ref = ray.put(spec)
        start = time.monotonic()
        pending = [task.remote(kind, spec_ref, i, k) for i in range(pictures) for k in range(points)]
        bar = _Progress(pictures, points)
        records: List[bytes] = []
        warned = set()
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=None)
                for ref in done:
                    item, _point, record, cached, warning = ray.get(ref)
                    if warning and item not in warned:
                        warned.add(item)
                        bar.bar.write(f"icm: warning: {warning}", file=sys.stderr)
                    records.append(record)
                    bar.record(item, cached)
        finally:
            bar.close()
        return records, bar.cached, time.monotonic() - start
    finally:
        ray.shutdown()


def _check_common(a: argparse.Namespace) -> None:
    import icm

    if getattr(a, "threads", 1) < 1 or (a.workers is not None and a.workers < 1) or a.retries < 0:
        raise icm.UsageError("--threads and --workers must be 1 or more, --retries 0 or more")
    _check_outputs([a.output, a.csv])


def _written(
    a: argparse.Namespace, out: Dict[str, Any], cached: int, records: int
) -> Dict[str, Any]:
    """Writes ``out``'s results files where ``-o`` and ``--csv`` say; returns ``out`` with
    ``cached`` and ``records`` added."""
    if a.output:
        _write(a.output, out["json"])
    if a.csv:
        _write(a.csv, out["csv"])
    out["cached"] = cached
    out["records"] = records
    return out


def run_task_eval(a: argparse.Namespace) -> Dict[str, Any]:
    """Runs ``task-eval`` as parsed by :func:`parse_args`; returns :meth:`TaskEvaluation.finish`'s
    dict with ``cached`` (records served from the cache) and ``records`` added."""
    import icm

    _check_common(a)
    spec = _spec(a)
    # The driver's own evaluation checks the arguments and the dataset before Ray starts,
    # and merges the records at the end.
    _use_this_onnxruntime()
    driver = icm.TaskEvaluation(**spec)
    records, cached, total_s = _run_records(a, "task-eval", spec, driver.pictures, len(driver.labels))
    out = driver.finish(records, total_s)
    if a.save_detections:
        for label, text in out["detections"].items():
            _write(f"{a.save_detections}-{label}.json", text)
    return _written(a, out, cached, len(records))


def run_anchor(a: argparse.Namespace) -> Dict[str, Any]:
    """Runs ``anchor`` as parsed by :func:`parse_args`; returns :meth:`AnchorEvaluation.finish`'s
    dict with ``cached`` (codings read from the anchor cache), ``records`` and ``table``."""
    import icm

    _check_common(a)
    spec = _anchor_spec(a)
    driver = icm.AnchorEvaluation(**spec)
    records, cached, _ = _run_records(a, "anchor", spec, driver.pictures, len(driver.labels))
    out = _written(a, driver.finish(records), cached, len(records))
    out["table"] = out["csv"]
    return out


def run_eval(a: argparse.Namespace) -> Dict[str, Any]:
    """Runs ``eval`` as parsed by :func:`parse_args`; returns :meth:`RdEvaluation.finish`'s
    dict (``json``, ``csv``, ``table``) with ``cached`` (rows read from the record cache)
    and ``records`` added."""
    import icm

    _check_common(a)
    spec = _eval_spec(a)
    # The driver's own evaluation checks the arguments, the models and the folder before
    # Ray starts, and makes the results file at the end.
    driver = icm.RdEvaluation(**spec)
    records, cached, _ = _run_records(a, "eval", spec, driver.pictures, len(driver.labels))
    return _written(a, driver.finish(records), cached, len(records))


_RUNS = {"task-eval": run_task_eval, "anchor": run_anchor, "eval": run_eval}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command ``python -m icm.dist``; returns its exit status."""
    import icm

    from ray.exceptions import RayError

    a = parse_args(argv)
    try:
        out = _RUNS[a.command](a)
    except icm.UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (icm.Error, RayError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "icm.dist: interrupted; the records done are in the cache: run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return 130
    sys.stdout.write(out["table"])
    print(f"records {out['records']}, {out['cached']} from the cache")
    return 0


if __name__ == "__main__":
    # Run from the module icm.dist (not __main__), so that Ray workers import the task
    # function and its per-process evaluations from the package.
    from icm.dist import main as _main

    sys.exit(_main())
