#!/usr/bin/env python3
"""Reference Bjontegaard-delta figures for crates/icm-eval/src/bdrate.rs (checked by tests/it/bd_rate.rs).

Writes bjontegaard_vectors.json next to this script: deterministic pseudo-random pairs of
rate-distortion curves (anchor, test) and, for each interpolation method of the PyPI
package ``bjontegaard`` (``pchip``, ``akima``, ``cubic``), the values of

* ``bjontegaard.bd_rate(rate_a, q_a, rate_t, q_t, method=m, require_matching_points=False,
  min_overlap=0)`` -> ``bd_rate`` (percent), and
* ``bjontegaard.bd_psnr(...)`` with the same arguments -> ``bd_metric``.

The curves are realistic-looking image-codec curves (rates 0.02-3 bpp, quality 20-45 "dB",
strictly increasing quality with rate), of 4 to 8 points, with different point counts for
anchor and test, partial overlaps and a share of irregular point spacings that exercise
the shape-preserving end-slope rules of PCHIP and the Akima weights. Some pairs are near-copies
(figures near zero); a few have 2 or 3 points (``cubic`` expected ``null``: VCEG-M33 needs 4) and a few do not overlap on one or
both axes (expected ``null``: bjontegaard returns NaN there, crates/icm-eval/src/bdrate.rs an error), and
ten ``bumpy`` anchors have a quality dip (``bd_rate`` of pchip/akima expected ``null``:
scipy raises ValueError as quality is not increasing, crates/icm-eval/src/bdrate.rs NotMonotone; the cubic
fit and every ``bd_metric`` are defined and exercise the sign rules of PCHIP).

Points are rounded to the precision of a results file (bpp to 6 decimals, quality to 4)
and stored in shuffled order; bjontegaard is called with the points sorted by rate, which
it requires (it does not sort; scipy needs increasing abscissae).

``cubic_mp`` additionally holds the cubic figures computed with mpmath at 50 digits, to
show how far numpy's polyfit/polyint in raw (uncentred) coordinates is from exact.

Usage: pip install bjontegaard scipy numpy mpmath; python3 make_bjontegaard_vectors.py
"""

import json
import os
import warnings

import bjontegaard as bd
import mpmath
import numpy as np
import scipy

SEED = 20240611
N_CASES = 220
METHODS = ("pchip", "akima", "cubic")


def curve(rng, n, irregular):
    """One increasing rate-quality curve of n points (bpp, quality)."""
    b0 = float(np.exp(rng.uniform(np.log(0.02), np.log(0.4))))
    if irregular:
        ratios = np.exp(rng.uniform(np.log(1.03), np.log(3.0), n - 1))
    else:
        ratios = np.exp(rng.uniform(np.log(1.3), np.log(2.2), n - 1))
    rates = b0 * np.concatenate([[1.0], np.cumprod(ratios)])
    # Quality: roughly logarithmic in rate, concave, with per-point jitter.
    slope = rng.uniform(3.0, 6.0)
    curv = rng.uniform(-0.6, 0.0)
    lr = np.log(rates / rates[0])
    q = rng.uniform(22.0, 32.0) + slope * lr + curv * lr**2 / 2
    jitter = rng.uniform(0.0, 0.9 if irregular else 0.2, n) * slope
    q = q + np.where(np.arange(n) % 2 == 0, jitter, -jitter) * 0.1
    # Make strictly increasing: each step at least a small positive amount.
    steps = np.diff(q)
    min_step = 0.02 if irregular else 0.2
    steps = np.maximum(steps, min_step + rng.uniform(0, 0.1, n - 1))
    q = np.concatenate([[q[0]], q[0] + np.cumsum(steps)])
    return np.round(rates, 6), np.round(q, 4)


def distinct_sorted(rates, q):
    order = np.argsort(rates)
    r, qq = rates[order], q[order]
    return np.all(np.diff(r) > 0) and np.all(np.diff(qq) > 0)


def overlap(a, b):
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    return hi > lo


def mp_cubic(x, y, lo, hi):
    """Least-squares cubic fit, integrated over [lo, hi], divided by the width (mpmath)."""
    mpmath.mp.dps = 50
    xs = [mpmath.mpf(float(v)) for v in x]
    ys = [mpmath.mpf(float(v)) for v in y]
    a = mpmath.matrix([[xv**k for k in range(4)] for xv in xs])
    b = mpmath.matrix(ys)
    c = mpmath.lu_solve(a.T * a, a.T * b)
    lo, hi = mpmath.mpf(float(lo)), mpmath.mpf(float(hi))
    integ = sum(c[k] * (hi ** (k + 1) - lo ** (k + 1)) / (k + 1) for k in range(4))
    return integ / (hi - lo)


def mp_reference(ra, qa, rt, qt):
    """(bd_rate, bd_metric) of the cubic method in 50-digit arithmetic (log10 as bjontegaard)."""
    mpmath.mp.dps = 50
    la = [mpmath.log10(mpmath.mpf(float(v))) for v in ra]
    lt = [mpmath.log10(mpmath.mpf(float(v))) for v in rt]
    out = {}
    lo, hi = max(min(qa), min(qt)), min(max(qa), max(qt))
    if hi > lo:
        d = mp_cubic(qt, lt, lo, hi) - mp_cubic(qa, la, lo, hi)
        out["bd_rate"] = float((mpmath.power(10, d) - 1) * 100)
    else:
        out["bd_rate"] = None
    lo, hi = max(min(la), min(lt)), min(max(la), max(lt))
    if hi > lo:
        out["bd_metric"] = float(mp_cubic(lt, qt, lo, hi) - mp_cubic(la, qa, lo, hi))
    else:
        out["bd_metric"] = None
    return out


def reference(ra, qa, rt, qt, method):
    """bjontegaard's figures for one method: points sorted by rate; None where NaN."""
    oa, ot = np.argsort(ra), np.argsort(rt)
    args = (ra[oa], qa[oa], rt[ot], qt[ot])
    kw = dict(method=method, require_matching_points=False, min_overlap=0)
    out = {}
    for key, fn in (("bd_rate", bd.bd_rate), ("bd_metric", bd.bd_psnr)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                v = float(fn(*args, **kw))
            except ValueError as e:  # scipy: x must be strictly increasing
                v, out[key + "_error"] = None, f"ValueError: {e}"
        if v is not None and np.isnan(v):
            v, out[key + "_error"] = None, "NaN: curves do not overlap"
        out[key] = v
    return out


def make_case(rng, kind):
    while True:
        irregular = rng.uniform() < 0.3
        if kind == "few":
            na, nt = int(rng.integers(2, 4)), int(rng.integers(2, 5))
        else:
            na, nt = int(rng.integers(4, 9)), int(rng.integers(4, 9))
        if kind == "bumpy":
            na = max(na, 5)
        ra, qa = curve(rng, na, irregular)
        if kind == "bumpy":
            # Quality dips at one interior point: not a function of quality any more.
            i = int(rng.integers(2, na - 1))
            qa[i] = np.round(qa[i - 1] - rng.uniform(0.1, 1.0), 4)
        # Test: the same kind of curve, shifted in rate and quality; sometimes far apart.
        rt, qt = curve(rng, nt, irregular)
        if kind == "disjoint":
            # Push the test curve beyond the anchor's quality range.
            qt = np.round(qt - qt.min() + qa.max() + rng.uniform(0.0, 3.0), 4)
        elif kind == "disjoint_rate":
            # Push the test curve beyond the anchor's rate range.
            rt = np.round(rt / rt.min() * ra.max() * rng.uniform(1.0, 2.0), 6)
        elif kind == "close":
            # A slightly perturbed copy of the anchor: BD figures near zero.
            nt = na
            rt = np.round(ra * np.exp(rng.normal(0.0, 0.003, na)), 6)
            qt = np.round(qa + rng.normal(0.0, 0.01, na), 4)
        else:
            # Align the test curve near the anchor's region so most pairs overlap partially.
            shift_r = np.exp(rng.uniform(-0.6, 0.6))
            rt = np.round(rt / rt[0] * ra[0] * shift_r, 6)
            qt = np.round(qt - qt[0] + qa[0] + rng.uniform(-1.5, 1.5), 4)
        if np.any(rt <= 0):
            continue
        if not (distinct_sorted(ra, qa) or kind == "bumpy") or not distinct_sorted(rt, qt):
            continue
        if kind == "bumpy" and (len(set(ra)) < na or qa[-1] <= qa[0]):
            continue
        la, lt = np.log10(ra), np.log10(rt)
        both = overlap(qa, qt) and overlap(la, lt)
        if kind.startswith("disjoint") or both:
            return ra, qa, rt, qt


def main():
    rng = np.random.default_rng(SEED)
    kinds = ["normal"] * (N_CASES - 46) + ["close"] * 16 + ["few"] * 12
    kinds += ["disjoint"] * 4 + ["disjoint_rate"] * 4 + ["bumpy"] * 10
    cases = []
    worst_mp = {"bd_rate": 0.0, "bd_metric": 0.0}
    for i, kind in enumerate(kinds):
        ra, qa, rt, qt = make_case(rng, kind)
        expected = {}
        for method in METHODS:
            if method == "cubic" and (len(ra) < 4 or len(rt) < 4):
                expected[method] = None
            else:
                expected[method] = reference(ra, qa, rt, qt, method)
        case = {"id": i, "kind": kind}
        pa, pt = rng.permutation(len(ra)), rng.permutation(len(rt))
        case["anchor"] = {"bpp": ra[pa].tolist(), "quality": qa[pa].tolist()}
        case["test"] = {"bpp": rt[pt].tolist(), "quality": qt[pt].tolist()}
        case["expected"] = expected
        if expected["cubic"] is not None:
            mp = mp_reference(ra, qa, rt, qt)
            case["cubic_mp"] = mp
            for k in worst_mp:
                e, m = expected["cubic"][k], mp[k]
                if e is not None and m is not None:
                    worst_mp[k] = max(worst_mp[k], abs(e - m) / max(abs(m), 1e-3))
        cases.append(case)
    doc = {
        "description": "bjontegaard.bd_rate / bd_psnr (require_matching_points=False, "
        "min_overlap=0) on pseudo-random RD curve pairs; see make_bjontegaard_vectors.py",
        "bjontegaard_version": bd.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "seed": SEED,
        "cubic_numpy_vs_mpmath_max_rel": worst_mp,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bjontegaard_vectors.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")
    print("cubic numpy vs mpmath, max relative:", worst_mp)


if __name__ == "__main__":
    main()
