"""Threads: encode and decode release the GIL, and threads decoding different streams at
once get the results one thread gets."""

import threading
import time

import numpy as np

import icm
from helpers import picture


def test_two_threads_decode_as_one():
    a = icm.encode(picture(256, 192, seed=1), quality=3, tile=128)
    b = icm.encode(picture(200, 150, seed=2), quality=1)
    want = {"a": (icm.decode(a), icm.decode_latents(a)["sha256"]),
            "b": (icm.decode(b), icm.decode_latents(b)["sha256"])}
    got = {"a": [], "b": []}
    errors = []
    barrier = threading.Barrier(2)

    def work(key, data):
        try:
            barrier.wait()
            for _ in range(3):
                got[key].append((icm.decode(data), icm.decode_latents(data)["sha256"]))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k, d)) for k, d in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key in ("a", "b"):
        assert len(got[key]) == 3
        for image, sha in got[key]:
            np.testing.assert_array_equal(image, want[key][0])
            assert sha == want[key][1]


def test_threads_encode_as_one():
    pics = [picture(128, 96, seed=s) for s in range(4)]
    want = [icm.encode(p) for p in pics]
    got = [None] * len(pics)

    def work(i):
        got[i] = icm.encode(pics[i], threads=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pics))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def progress_during(call):
    """Runs call() in a thread while this thread counts; returns (seconds call ran, seconds
    between the first and last count made while it ran)."""
    state = {"inside": False, "t0": None, "t1": None}
    stamps = []

    def work():
        state["t0"] = time.perf_counter()
        state["inside"] = True
        call()
        state["inside"] = False
        state["t1"] = time.perf_counter()

    t = threading.Thread(target=work)
    t.start()
    while t.is_alive():
        if state["inside"]:
            stamps.append(time.perf_counter())
    t.join()
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return state["t1"] - state["t0"], span


def test_the_gil_is_released_while_the_codec_runs():
    """With the GIL held through a decode, this thread could not count while it runs (it
    could only before the call and after it); released, it counts all along."""
    img = picture(768, 512, seed=9)
    data = icm.encode(img, threads=1)
    for call in (lambda: icm.decode(data, threads=1), lambda: icm.encode(img, threads=1)):
        ran, span = progress_during(call)
        assert ran > 0.05, ran  # long enough to tell
        assert span > 0.5 * ran, (span, ran)
